package dev.jvbus.net;

/** An operator's network request that cannot be done (no such network, the name is taken, it is in use); the message says why. */
public final class NetworkException extends RuntimeException {
    public NetworkException(String message) {
        super(message);
    }
}
