package dev.jvbus.core.bus;

/**
 * A request on one device was refused. Carries the devid so a connector can report it on that
 * device only. Unchecked: callers on the control plane turn it into an error reply.
 */
public class DeviceException extends RuntimeException {
    private final DevId devid;
    private final String reason;

    public DeviceException(DevId devid, String message) {
        super("device " + devid + ": " + message);
        this.devid = devid;
        this.reason = message;
    }

    public DeviceException(DevId devid, String message, Throwable cause) {
        super("device " + devid + ": " + message, cause);
        this.devid = devid;
        this.reason = message;
    }

    /** What was refused and why, without the devid (for a caller that names the device itself). */
    public String reason() {
        return reason;
    }

    public DevId devid() {
        return devid;
    }
}
