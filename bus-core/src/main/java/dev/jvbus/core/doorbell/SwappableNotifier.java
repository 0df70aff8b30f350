package dev.jvbus.core.doorbell;

import java.util.Objects;

/**
 * A doorbell whose target can be replaced while a worker signals through it: the driver re-points
 * a running queue's call doorbell (vhost-user SET_VRING_CALL) without the queue stopping. The worker
 * reads the target with one volatile load per signal (not per buffer); no lock, no allocation.
 *
 * <p>A worker that read the old target just before a {@link #swap} may still signal it once; the
 * connector may close the old doorbell right after the swap, because an {@code EventFd} signalled
 * after (or while) it is closed does nothing to anyone else's fd.
 */
public final class SwappableNotifier implements Notifier {
    private volatile Notifier target;

    public SwappableNotifier(Notifier target) {
        this.target = Objects.requireNonNullElse(target, Notifier.NONE);
    }

    @Override
    public void signal() {
        target.signal();
    }

    /** Signals go to {@code next} from now on (null: nowhere); returns the previous target. */
    public Notifier swap(Notifier next) {
        Notifier old = target;
        target = Objects.requireNonNullElse(next, Notifier.NONE);
        return old;
    }

    /** Where signals go now. */
    public Notifier target() {
        return target;
    }
}
