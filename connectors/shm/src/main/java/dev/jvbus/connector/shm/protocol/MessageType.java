package dev.jvbus.connector.shm.protocol;

/** Frame types and how many fds each carries. Requests 0x01-0x7f, the reply 0x80, events 0xc0-0xff. */
public enum MessageType {
    HELLO(0x01, 0),
    ENUMERATE(0x02, 0),
    DEVOPEN(0x03, 0),
    DEVCLOSE(0x04, 0),
    DEVCALL(0x05, 0),
    DEVSHM(0x06, 1),
    SIGNAL(0x07, 2),
    REPLY(0x80, 0),
    DEVADD(0xC0, 0),
    DEVDROP(0xC1, 0),
    NEEDS_RESET(0xC2, 0),
    /** Version 2: the device moves to another bus (PROTOCOL.md, "Following a moved device"). */
    MOVED(0xC3, 0),
    /** Version 3: the device changed its config space on its own (PROTOCOL.md, "Events"). */
    CONFIG_CHANGED(0xC4, 0);

    private final int code;
    private final int fds;

    MessageType(int code, int fds) {
        this.code = code;
        this.fds = fds;
    }

    public int code() { return code; }

    /** Exactly this many fds travel with the frame. */
    public int fds() { return fds; }

    private static final MessageType[] BY_CODE = new MessageType[256];

    static {
        for (MessageType t : values()) BY_CODE[t.code] = t;
    }

    /** The type for a wire code, or null. */
    public static MessageType of(int code) {
        return code >= 0 && code < 256 ? BY_CODE[code] : null;
    }
}
