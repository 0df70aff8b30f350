package dev.jvbus.core.state;

import java.util.List;
import java.util.Objects;

/**
 * Everything needed to rebuild one queue of a device over the same shared memory and carry on
 * where it stopped. Captured only from a quiesced queue (no worker running it).
 *
 * <p>ANY CHANGE to the fields or their meaning needs a {@link StateCodec#CURRENT_VERSION} bump,
 * and the codec must keep reading the older version or refuse it by name.
 *
 * @param index        queue index within the device (rx = 0, tx = 1, ...)
 * @param kind         ring layout
 * @param size         number of descriptors (power of two for split rings)
 * @param ready        the driver enabled the queue (virtio queue_enable / vhost-user SET_VRING_ENABLE)
 * @param descAddr     guest address of the descriptor table
 * @param availAddr    split: guest address of the available ring; IOQ: guest address of the ring head
 * @param usedAddr     split: guest address of the used ring; IOQ: unused (0)
 * @param nextAvail    device side: the next available index it will consume (free-running u16 for split)
 * @param nextUsed     device side: the next used index it will publish (free-running u16 for split)
 * @param eventIdx     VIRTIO_RING_F_EVENT_IDX (or the IOQ equivalent) is in force on this queue
 * @param inFlight     descriptor heads the device had taken but not yet returned, oldest first
 */
public record QueueState(
        int index,
        RingKind kind,
        int size,
        boolean ready,
        long descAddr,
        long availAddr,
        long usedAddr,
        int nextAvail,
        int nextUsed,
        boolean eventIdx,
        List<Integer> inFlight) {

    public QueueState {
        Objects.requireNonNull(kind, "kind");
        inFlight = List.copyOf(Objects.requireNonNull(inFlight, "inFlight"));
        if (index < 0) throw new IllegalArgumentException("queue index must be >= 0: " + index);
        if (size < 0) throw new IllegalArgumentException("queue size must be >= 0: " + size);
    }
}
