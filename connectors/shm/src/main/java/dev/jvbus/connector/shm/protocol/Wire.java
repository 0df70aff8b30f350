package dev.jvbus.connector.shm.protocol;

/** Constants of the shm protocol's framing (see PROTOCOL.md beside the module). */
public final class Wire {
    private Wire() {}

    /** The newest protocol version this side speaks. HELLO negotiates it: the highest both sides speak. */
    public static final int VERSION = 3;
    /**
     * The oldest version this side still speaks (version 2 adds the MOVED event, version 3 the CONFIG_CHANGED
     * event; nothing else changed).
     */
    public static final int MIN_VERSION = 1;
    /** Frame header: u32 length, u16 type, u8 fd count, u8 reserved, u32 seq. */
    public static final int HEADER = 12;
    /** Largest frame, header included. A larger length means the stream is not ours or is corrupt. */
    public static final int MAX_FRAME = 64 * 1024;
    /** Most fds one frame may carry. */
    public static final int MAX_FDS = 4;
    /** Longest string field in bytes (UTF-8). */
    public static final int MAX_STRING = 1024;
}
