package dev.jvbus.core.spi;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;

/**
 * One queue ready to run, handed to the model at start: where the ring is, the memory it lives
 * in, its doorbells, and, after a restore, the position to carry on from.
 *
 * @param kick   the driver's doorbell to the device; the model's worker waits on it
 * @param call   the device's doorbell to the driver; the ring decides when to ring it
 * @param resume the saved position when the device was restored, else null (start from zero)
 * @param active false for a ring that is started but disabled (vhost-user): the device must process
 *               it without side effects (a net device discards tx, delivers no rx) until
 *               {@link DeviceFunction#queueActive} says otherwise
 * @param counters the queue's counters for the device's life: every ring built for this queue counts into
 *               them (and attaches to them), so an operator's counts survive resets and restarts
 * @param inflight for a split ring, the record of its heads in flight that the model hands to the ring
 *               ({@code SplitVirtqueue.trackInflight}), kept in memory that outlives the bus (vhost-user
 *               INFLIGHT_SHMFD); null when the connector keeps none
 */
public record QueueBinding(QueueSpec spec, QueueConfig config, GuestMemory memory, EventFd kick, Notifier call, QueueState resume,
                           boolean active, QueueCounters counters, SplitInflightLog inflight) {
    public int index() {
        return config.index();
    }
}
