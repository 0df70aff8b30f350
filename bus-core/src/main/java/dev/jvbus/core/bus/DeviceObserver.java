package dev.jvbus.core.bus;

/**
 * How a device tells its attached driver about events it did not ask for. A connector implements
 * this to forward them to its guest or client (NEEDS_RESET message, DEVDROP).
 * Called from bus threads; implementations must not block for long.
 */
public interface DeviceObserver {
    /** The device found a driver error and needs a reset. */
    default void needsReset(DevId devid, String reason) { }

    /** The device was unplugged: it was reset, its queues stopped; the attachment is closed. */
    default void removed(DevId devid) { }

    DeviceObserver NONE = new DeviceObserver() { };
}
