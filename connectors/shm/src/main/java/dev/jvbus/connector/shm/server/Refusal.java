package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.ErrorCode;

/**
 * A request the session turns down: the client's error, answered with a REPLY carrying
 * {@link #code()} and this message. The session carries on.
 */
final class Refusal extends Exception {
    private final ErrorCode code;

    Refusal(ErrorCode code, String message) {
        super(message, null, false, false);
        this.code = code;
    }

    ErrorCode code() { return code; }
}
