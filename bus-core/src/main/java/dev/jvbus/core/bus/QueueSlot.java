package dev.jvbus.core.bus;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.doorbell.SwappableNotifier;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;

/**
 * One queue of a device as its driver set it up: where it is, its doorbells, whether it is enabled
 * and started, and the position it carries on from. State only, guarded by the {@link Device}'s lock;
 * the device decides what to do with it. Memory and doorbells belong to the connector (it maps and
 * closes them); the slot only holds references while the driver is attached.
 */
final class QueueSlot {
    final QueueSpec spec;
    final int index;
    /** What this queue's data path did, from hotplug to unplug, whichever rings ran it (read without the lock). */
    final QueueCounters counters = new QueueCounters();

    QueueConfig config;        // where the driver placed the ring; null until it did
    boolean enabled;           // the driver enabled it (virtio queue_enable): it starts at DRIVER_OK
    boolean active = true;     // false: started but disabled (vhost-user), processed without side effects
    EventFd kick;
    Notifier call;
    QueueState resumeFrom;     // the position to carry on from at the next start, else null (from zero)
    /** The driver wants it running: set when the data path starts with it, cleared when it is stopped alone. */
    boolean started;
    /**
     * The call doorbell the running queue signals through: the driver may re-point it while the queue
     * runs (vhost-user SET_VRING_CALL), so the model holds this and never the driver's notifier itself.
     */
    SwappableNotifier liveCall;
    /** The connector's inflight record for this queue's next start (vhost-user INFLIGHT_SHMFD), else null. */
    SplitInflightLog inflight;

    QueueSlot(QueueSpec spec, int index) {
        this.spec = spec;
        this.index = index;
    }

    /** What the model gets for this queue: the doorbell it signals is a fresh swappable one. */
    QueueBinding binding(GuestMemory memory) {
        liveCall = new SwappableNotifier(call);
        return new QueueBinding(spec, config, memory, kick, liveCall, resumeFrom, active, counters, inflight);
    }

    /** Back to what a device starts with: nothing set up. */
    void clear() {
        config = null;
        enabled = false;
        active = true;
        kick = null;
        call = null;
        resumeFrom = null;
        started = false;
        liveCall = null;
        inflight = null;
        counters.detach();   // the counts stay: they are the device's, not the driver's
    }
}
