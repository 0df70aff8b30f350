package dev.jvbus.core.spi;

/**
 * A model function refused what the driver (guest or client) asked: a malformed DEVCALL, a queue
 * setup it cannot honour, a ring fault. The driver's error, reported on that device only.
 */
public class DeviceFault extends Exception {
    public DeviceFault(String message) {
        super(message);
    }

    public DeviceFault(String message, Throwable cause) {
        super(message, cause);
    }
}
