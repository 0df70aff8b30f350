package dev.jvbus.connector.shm.protocol;

/**
 * A frame broke the protocol. {@link #recoverable()} says whether the stream can go on (the
 * frame's length was sound, so the next frame starts where expected) or must close (the length
 * itself was impossible, so there is no next frame to find).
 */
public final class ProtocolException extends Exception {
    private final ErrorCode code;
    private final boolean recoverable;

    public ProtocolException(ErrorCode code, String message) {
        this(code, message, code != ErrorCode.BAD_FRAME);
    }

    private ProtocolException(ErrorCode code, String message, boolean recoverable) {
        super(message, null, false, false);
        this.code = code;
        this.recoverable = recoverable;
    }

    public ErrorCode code() { return code; }

    public boolean recoverable() { return recoverable; }
}
