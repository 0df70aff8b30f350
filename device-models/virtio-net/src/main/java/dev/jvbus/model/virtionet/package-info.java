/**
 * The virtio-net device model (virtio 1.x, device id 1): {@link dev.jvbus.model.virtionet.VirtioNetModel}
 * describes it to the bus, {@link dev.jvbus.model.virtionet.VirtioNetDevice} runs one device between its
 * split virtqueues and an L2 switch port.
 */
package dev.jvbus.model.virtionet;
