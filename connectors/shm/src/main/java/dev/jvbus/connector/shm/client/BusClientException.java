package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.ErrorCode;

/**
 * The bus refused a request ({@link #code()} says why, the message is the bus's own text), or the
 * connection is gone ({@link #connectionLost()}; then the code is the bus's last word if it sent
 * one, such as DENIED or BAD_FRAME, else null).
 */
public final class BusClientException extends RuntimeException {
    private final ErrorCode code;
    private final boolean connectionLost;

    BusClientException(ErrorCode code, String message, boolean connectionLost) {
        super(code == null ? message : code + ": " + message);
        this.code = code;
        this.connectionLost = connectionLost;
    }

    BusClientException(String message, Throwable cause) {
        super(message, cause);
        this.code = null;
        this.connectionLost = true;
    }

    /** The bus's error code, or null if the connection failed without one. */
    public ErrorCode code() { return code; }

    /** True if the connection is gone; no further request can succeed. */
    public boolean connectionLost() { return connectionLost; }
}
