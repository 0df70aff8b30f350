package dev.jvbus.core.bus;

/**
 * A request on one device was refused. Carries the devid so a connector can report it on that
 * device only. Unchecked: callers on the control plane turn it into an error reply.
 */
public class DeviceException extends RuntimeException {
    private final DevId devid;

    public DeviceException(DevId devid, String message) {
        super("device " + devid + ": " + message);
        this.devid = devid;
    }

    public DeviceException(DevId devid, String message, Throwable cause) {
        super("device " + devid + ": " + message, cause);
        this.devid = devid;
    }

    public DevId devid() {
        return devid;
    }
}
