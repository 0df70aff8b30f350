package dev.jvbus.core.bus;


/**
 * The devid names no device in this container. Deliberately the same answer whether the devid
 * never existed or belongs to another container: a session learns nothing about other containers.
 */
public final class NoSuchDeviceException extends BusException {
    private final DevId devid;

    public NoSuchDeviceException(String container, DevId devid) {
        super("no such device " + devid + " in container '" + container + "'");
        this.devid = devid;
    }

    public DevId devid() {
        return devid;
    }
}
