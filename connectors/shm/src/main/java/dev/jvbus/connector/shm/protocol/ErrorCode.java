package dev.jvbus.connector.shm.protocol;

/** Error codes carried in a REPLY's status field. 0 is success. */
public enum ErrorCode {
    OK(0),
    /** The frame's body does not match its type: truncated, too long, bad string. */
    BAD_MESSAGE(1),
    UNKNOWN_TYPE(2),
    /** The frame carried a different number of fds than its type needs, or fds of the wrong kind. */
    BAD_FDS(3),
    /** Anything before a successful HELLO. */
    HELLO_FIRST(4),
    UNSUPPORTED_VERSION(5),
    /** No such device in this session's container (also for devids of other containers). */
    NO_SUCH_DEVICE(6),
    /** The device is open by another client. */
    BUSY(7),
    /** The device is not open by this session. */
    NOT_OPEN(8),
    /** The device refused the request (status machine, features, model verb). */
    DEVICE_ERROR(9),
    /** A memory region that cannot be used: bad size, overlap, unmappable fd. */
    BAD_REGION(10),
    /** The peer's credentials are not allowed on this container. */
    DENIED(11),
    /** The framing itself is broken; the bus closes the connection after this reply. */
    BAD_FRAME(12),
    INTERNAL(13),
    /** An operator limit was reached (sessions per socket, regions or bytes per session, time to HELLO); the message names it. */
    LIMIT(14);

    private final int code;

    ErrorCode(int code) { this.code = code; }

    public int code() { return code; }

    public static ErrorCode of(int code) {
        for (ErrorCode e : values()) if (e.code == code) return e;
        return INTERNAL;
    }
}
