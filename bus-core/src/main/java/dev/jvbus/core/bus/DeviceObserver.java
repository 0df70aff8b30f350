package dev.jvbus.core.bus;

/**
 * How a device tells its attached driver about events it did not ask for. A connector implements
 * this to forward them to its guest or client (NEEDS_RESET message, DEVDROP).
 * Called from bus threads; implementations must not block for long.
 */
public interface DeviceObserver {
    /** The device found a driver error and needs a reset. */
    default void needsReset(DevId devid, String reason) { }

    /**
     * The device changed its config space on its own and wants the driver to read it again (virtio's
     * configuration change notification: virtio-net's announce request after a restore, say).
     */
    default void configChanged(DevId devid) { }

    /** The device was unplugged: it was reset, its queues stopped; the attachment is closed. */
    default void removed(DevId devid) { }

    /**
     * The device is being moved to another bus and waits there, restored and paused, for this driver
     * to share its memory and doorbells again ({@code to} says where). The attachment here stays open:
     * the device is released (removed) once the other bus runs it, or resumes here if the move fails.
     *
     * @return whether the driver was told (a connector whose client cannot follow a move says false)
     */
    default boolean moved(DevId devid, Relocation to) { return false; }

    DeviceObserver NONE = new DeviceObserver() { };
}
