package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitRingResume;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;

/**
 * A driver that outlived its bus takes up the fresh device the restarted bus made with the same devid
 * (RESUME_DRIVER, RESUME_QUEUE): the features it had, the rings where they are in its memory. Everything the
 * driver claims is checked here or by the ring's own resume check, and a resume that does not fit this device
 * is refused with what does not fit; the device is then reset, so the driver may set it up afresh instead.
 */
final class DriverResume {
    private DriverResume() {}

    /**
     * ACKNOWLEDGE, DRIVER, exactly {@code features}, FEATURES_OK; refused unless the device is fresh and takes them all:
     * what it offers, or what its model honours in a saved driver (a one-pair virtio-net device's MQ, negotiated under
     * the offer of an older bus), as a restore takes them ({@link Attachment#resumeDriver}).
     */
    static void features(Attachment a, long features) throws ProtocolException {
        if (a.status().bits() != 0)
            throw refuse(a, "RESUME_DRIVER takes up a fresh device (status 0); this one is at " + a.status() + ": reset it first");
        try {
            a.resumeDriver(features);
        } catch (FeatureNegotiationException e) {   // the device stays at reset
            throw refuse(a, "cannot resume with features 0x" + Long.toHexString(features) + ": " + e.reason());
        } catch (RuntimeException e) {
            a.reset();
            throw refuse(a, "cannot resume with features 0x" + Long.toHexString(features) + ": " + e.getMessage());
        }
    }

    /** Places a split ring already in use, carrying on from its used index; returns that index. */
    static int queue(Attachment a, QueueConfig q) throws ProtocolException {
        if (!a.status().has(DeviceStatus.FEATURES_OK) || a.status().has(DeviceStatus.DRIVER_OK))
            throw refuse(a, "RESUME_QUEUE " + q.index() + " comes after RESUME_DRIVER and before DRIVER_OK; the device is at " + a.status());
        if (q.index() >= a.device().queues().count())
            throw refuse(a, "cannot resume queue " + q.index() + ": " + a.device().type() + " has " + a.device().queues().count() + " queues");
        QueueSpec spec = a.device().queues().queue(q.index());
        if (spec.kind() != RingKind.SPLIT)
            throw refuse(a, "cannot resume queue " + q.index() + " (" + spec.name() + "): it is an " + spec.kind() + " ring; RESUME_QUEUE resumes split rings");
        if (!spec.accepts(q.size()))
            throw refuse(a, "cannot resume queue " + q.index() + " (" + spec.name() + ") of size " + q.size() + ": its size must be " + spec.sizeRule());
        QueueState at;
        try {
            at = SplitRingResume.fromUsed(q.index(), q.size(), q.descAddr(), q.availAddr(), q.usedAddr(), a.memory(),
                    VirtioFeatures.EVENT_IDX.in(a.negotiatedFeatures()));
        } catch (QueueFault f) {
            throw refuse(a, "cannot resume queue " + q.index() + ": " + f.getMessage());
        }
        a.setQueue(q, at);
        return at.nextUsed();
    }

    private static ProtocolException refuse(Attachment a, String why) {
        return new ProtocolException(ErrorCode.DEVICE_ERROR, "device " + a.devid() + ": " + why);
    }
}
