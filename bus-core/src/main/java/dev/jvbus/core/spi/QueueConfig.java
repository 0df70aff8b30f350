package dev.jvbus.core.spi;

/**
 * Where the driver put one queue: its size and ring addresses in guest memory (the virtio
 * queue_desc / queue_driver / queue_device registers, vhost-user SET_VRING_NUM / ADDR).
 * Checked against the model's {@link QueueSpec} when set; checked against guest memory when the
 * ring is built, because memory may arrive later.
 *
 * @param availAddr split ring: available ring; IOQ: ring head
 * @param usedAddr  split ring: used ring; IOQ: 0
 */
public record QueueConfig(int index, int size, long descAddr, long availAddr, long usedAddr) { }
