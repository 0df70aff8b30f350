package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;

/**
 * What both ends of one split ring hold, the device's {@link SplitVirtqueue} and the driver's
 * {@link SplitVirtqueueDriver}: the mapped ring, the guest memory its descriptors point into, and the
 * negotiated features that shape the ring. Each end adds its own bookkeeping and its doorbell.
 */
abstract sealed class SplitRingEnd permits SplitVirtqueue, SplitVirtqueueDriver {
    final SplitRing ring;
    final GuestMemory memory;
    final int queue;
    final int size;
    final int mask;
    /** VIRTIO_F_EVENT_IDX: each end publishes where it is (used_event, avail_event) instead of a flag. */
    final boolean eventIdx;
    /** VIRTIO_F_INDIRECT_DESC: a descriptor may point to a table of its own. */
    final boolean indirect;
    /** VIRTIO_F_IN_ORDER: buffers are used in the order they were made available. */
    final boolean inOrder;
    /** Set once, when the other end broke a ring rule: every later call that touches the ring rethrows it. */
    QueueFault fault;

    SplitRingEnd(SplitRing ring, GuestMemory memory, boolean eventIdx, boolean indirect, boolean inOrder) {
        this.ring = ring;
        this.memory = memory;
        this.queue = ring.queue;
        this.size = ring.size;
        this.mask = ring.mask;
        this.eventIdx = eventIdx;
        this.indirect = indirect;
        this.inOrder = inOrder;
    }

    /** Stops the queue on the other end's error; returns the fault to throw. */
    final QueueFault stop(QueueFault.Reason reason, String detail) {
        fault = new QueueFault(queue, reason, detail);
        faulted(reason);
        return fault;
    }

    /** A fault stopped the queue (once per ring): the device side counts it by reason. */
    void faulted(QueueFault.Reason reason) { }

    public final int index() { return queue; }

    public final int size() { return size; }

    /** Whether VIRTIO_F_IN_ORDER was negotiated (buffers used in order; one used element may stand for a batch). */
    public final boolean inOrder() { return inOrder; }

    /** Whether the queue stopped on the other end's error; see {@link #fault()}. */
    public final boolean isStopped() { return fault != null; }

    /** The fault that stopped the queue, or null. */
    public final QueueFault fault() { return fault; }
}
