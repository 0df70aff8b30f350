package dev.jvbus.core.bus;

/** The driver wrote a status the virtio state machine does not allow from the current one. */
public final class IllegalStatusTransitionException extends DeviceException {
    private final DeviceStatus from;
    private final int requested;

    public IllegalStatusTransitionException(DevId devid, DeviceStatus from, int requested, String why) {
        super(devid, "status " + from + " -> " + new DeviceStatus(requested) + " not allowed: " + why);
        this.from = from;
        this.requested = requested;
    }

    public DeviceStatus from() { return from; }

    public int requested() { return requested; }
}
