package dev.jvbus.core.doorbell;

import dev.jvbus.core.sys.EventFd;
import java.util.Objects;

/**
 * One direction of a queue's doorbell: the driver kicking the device, or the device calling
 * (interrupting) the driver. Rings decide <em>whether</em> to signal (event idx, flags,
 * shm-signal); a Notifier only delivers the signal, typically by writing an eventfd.
 */
@FunctionalInterface
public interface Notifier {
    /** Deliver one signal. Must be cheap and must not block. */
    void signal();

    Notifier NONE = () -> { };

    /**
     * The doorbell that rings {@code eventFd}. {@code sys} depends on nothing else in bus-core, so
     * {@link EventFd} does not implement this interface; this adapts it once, at setup. On the hot
     * path it stays one interface call on a final class, which then calls the final
     * {@link EventFd#signal()} directly (the JIT inlines that hop).
     */
    static Notifier of(EventFd eventFd) {
        Objects.requireNonNull(eventFd, "eventFd");
        return eventFd::signal;
    }
}
