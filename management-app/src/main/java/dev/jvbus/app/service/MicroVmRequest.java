package dev.jvbus.app.service;

/**
 * Starting a micro-VM: the container it attaches to, its memory, and the guest program it runs. The one
 * program today is the bundled guest's {@code responder}: a host that answers ARP and ping for {@code ip}
 * on the virtio-net device {@code devid}, until stopped.
 *
 * @param memoryMiB guest memory in MiB, a multiple of 2 from 4 to 64 (default 4)
 */
public record MicroVmRequest(String container, String program, Integer memoryMiB, Long devid, String ip) { }
