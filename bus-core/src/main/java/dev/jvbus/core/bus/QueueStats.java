package dev.jvbus.core.bus;

import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.RingPosition;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One queue of a device as an operator sees it now: whether it runs, where its ring is as the device
 * sees it (null while no ring runs it), and what its data path did since the device was plugged in.
 * A snapshot: racy reads of plain fields, each exact, the set not atomic.
 *
 * @param size       the ring's size as the driver set it up (0 before it did)
 * @param nextAvail  the next buffer the device takes (split ring: last_avail_idx), or null when not running
 *                   (or when the model's ring does not report where it is)
 * @param nextUsed   the next slot the device completes into (split ring: used idx), or null
 * @param inFlight   buffers taken and not yet returned, or null
 * @param available  buffers the driver made available that the device has not taken (the ring's fill), or null
 * @param lateWakeups wake-ups of its worker that found it with work its driver had not rung for (a stall shows here)
 * @param linesEvicted cache lines of its ring and buffers the device evicted after reading them ({@code CacheLines};
 *                   virtio-net's tx queues, where measured to pay)
 * @param faults     ring faults found on this queue, by {@link QueueFault.Reason} name (only those that occurred)
 * @see QueueCounters for what each count means
 */
public record QueueStats(int index, String name, int size, boolean running, Integer nextAvail, Integer nextUsed,
                         Integer inFlight, Integer available, long buffers, long bytes, long kicks, long lateWakeups, long notificationsSent,
                         long notificationsSuppressed, long linesEvicted, Map<String, Long> faults) {
    public QueueStats {
        faults = Map.copyOf(faults);
    }

    static QueueStats of(int index, String name, int configuredSize, boolean running, QueueCounters c) {
        RingPosition ring = running ? c.ring() : null;
        Map<String, Long> faults = new LinkedHashMap<>();
        for (QueueFault.Reason r : QueueFault.Reason.values()) if (c.faults(r) != 0) faults.put(r.name(), c.faults(r));
        if (ring != null) {
            try {
                return new QueueStats(index, name, ring.size(), true, ring.nextAvail(), ring.nextUsed(), ring.inFlight(), ring.available(),
                        c.buffers(), c.bytes(), c.kicks(), c.lateWakeups(), c.notificationsSent(), c.notificationsSuppressed(), c.linesEvicted(), faults);
            } catch (IllegalStateException | WrongThreadException unmapped) {
                // The driver left since we looked and its memory is unmapped (a closed arena refuses the read):
                // the queue no longer runs.
                running = false;
            }
        }
        // Not running, or running on a ring that does not report its position (a model that builds its
        // rings without the queue's counters): the counts, without indices.
        return new QueueStats(index, name, configuredSize, running, null, null, null, null,
                c.buffers(), c.bytes(), c.kicks(), c.lateWakeups(), c.notificationsSent(), c.notificationsSuppressed(), c.linesEvicted(), faults);
    }
}
