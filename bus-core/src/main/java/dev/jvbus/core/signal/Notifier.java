package dev.jvbus.core.signal;

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
}
