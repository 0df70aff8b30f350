package dev.jvbus.core.state;

/** Saved state that this bus cannot read: wrong format, a newer version, or damaged content. */
public final class StateFormatException extends RuntimeException {
    public StateFormatException(String message) {
        super(message);
    }

    public StateFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
