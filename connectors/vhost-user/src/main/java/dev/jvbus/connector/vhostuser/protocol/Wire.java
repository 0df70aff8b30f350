package dev.jvbus.connector.vhostuser.protocol;

/** vhost-user framing constants. Numbers are in the machine's byte order (little-endian here). */
public final class Wire {
    private Wire() {}

    /** request u32, flags u32, size u32. */
    public static final int HEADER = 12;
    /** Flags: version 1 in the low two bits, REPLY (bit 2) on back-end replies, NEED_REPLY (bit 3) from the front-end. */
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;
    /** VHOST_MEMORY_BASELINE_NREGIONS: the regions SET_MEM_TABLE may carry (and fds it may pass). */
    public static final int MAX_REGIONS = 8;
    /** Memory slots we accept through ADD_MEM_REG (GET_MAX_MEM_SLOTS) unless the operator says otherwise (VhostUserLimits). */
    public static final int MAX_MEM_SLOTS = 32;
    /** Largest config-space access. */
    public static final int MAX_CONFIG = 256;
    /** Largest payload we read; anything larger is not a vhost-user message we know and the stream cannot be trusted. */
    public static final int MAX_PAYLOAD = 4096;
    /** Bits 0-7 of a VRING_KICK/CALL/ERR payload: the ring index; bit 8: no fd (poll instead). */
    public static final long VRING_IDX_MASK = 0xff;
    public static final long VRING_NOFD_MASK = 0x100;

    /** Feature bit 30: the back-end speaks protocol features. Not a virtio bit: never shown to the guest. */
    public static final int F_PROTOCOL_FEATURES = 30;
    /** Feature bit 26: VHOST_F_LOG_ALL, the front-end asks for dirty logging (migration). */
    public static final int F_LOG_ALL = 26;
    /** SET_VRING_ADDR flags bit 0: log writes to the used ring. */
    public static final int VRING_F_LOG = 0x1;
    /** Dirty-log page size. */
    public static final int LOG_PAGE = 0x1000;
}
