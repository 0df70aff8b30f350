package dev.jvbus.core.bus;

/** An operator or connector asked the bus for something it cannot do; the message says what and why. */
public class BusException extends RuntimeException {
    public BusException(String message) {
        super(message);
    }
}
