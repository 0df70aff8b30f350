package dev.jvbus.core.bus;

/** The device is already attached to another driver; one driver per device at a time. */
public final class DeviceBusyException extends DeviceException {
    public DeviceBusyException(DevId devid, String holder) {
        super(devid, "already open by " + holder);
    }
}
