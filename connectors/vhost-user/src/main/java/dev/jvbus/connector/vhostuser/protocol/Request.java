package dev.jvbus.connector.vhostuser.protocol;

/**
 * Front-end requests of QEMU's vhost-user protocol (docs/interop/vhost-user.rst), with the payload
 * each carries, how many fds travel with it, and whether the back-end always replies.
 * Requests we do not implement are absent: they decode as unknown and get the spec's error handling.
 */
public enum Request {
    GET_FEATURES(1, Payload.NONE, 0, 0, true),
    SET_FEATURES(2, Payload.U64, 0, 0, false),
    SET_OWNER(3, Payload.NONE, 0, 0, false),
    RESET_OWNER(4, Payload.NONE, 0, 0, false),
    SET_MEM_TABLE(5, Payload.MEM_TABLE, 1, Wire.MAX_REGIONS, false),
    SET_LOG_BASE(6, Payload.LOG, 1, 1, true),
    SET_LOG_FD(7, Payload.NONE, 1, 1, false),
    SET_VRING_NUM(8, Payload.VRING_STATE, 0, 0, false),
    SET_VRING_ADDR(9, Payload.VRING_ADDR, 0, 0, false),
    SET_VRING_BASE(10, Payload.VRING_STATE, 0, 0, false),
    GET_VRING_BASE(11, Payload.VRING_STATE, 0, 0, true),
    SET_VRING_KICK(12, Payload.U64, 0, 1, false),
    SET_VRING_CALL(13, Payload.U64, 0, 1, false),
    SET_VRING_ERR(14, Payload.U64, 0, 1, false),
    GET_PROTOCOL_FEATURES(15, Payload.NONE, 0, 0, true),
    SET_PROTOCOL_FEATURES(16, Payload.U64, 0, 0, false),
    GET_QUEUE_NUM(17, Payload.NONE, 0, 0, true),
    SET_VRING_ENABLE(18, Payload.VRING_STATE, 0, 0, false),
    SEND_RARP(19, Payload.U64, 0, 0, false),
    NET_SET_MTU(20, Payload.U64, 0, 0, false),
    GET_CONFIG(24, Payload.CONFIG, 0, 0, true),
    SET_CONFIG(25, Payload.CONFIG, 0, 0, false),
    GET_INFLIGHT_FD(31, Payload.INFLIGHT, 0, 0, true),
    SET_INFLIGHT_FD(32, Payload.INFLIGHT, 1, 1, false),
    RESET_DEVICE(34, Payload.NONE, 0, 0, false),
    GET_MAX_MEM_SLOTS(36, Payload.NONE, 0, 0, true),
    ADD_MEM_REG(37, Payload.MEM_REGION, 1, 1, false),
    REM_MEM_REG(38, Payload.MEM_REGION, 0, 1, false),
    SET_STATUS(39, Payload.U64, 0, 0, false),
    GET_STATUS(40, Payload.NONE, 0, 0, true);

    /** Payload shapes (section "Payload" of the spec). */
    public enum Payload {
        NONE(0, 0), U64(8, 8), VRING_STATE(8, 8), VRING_ADDR(40, 40),
        MEM_TABLE(8, 8 + 32 * Wire.MAX_REGIONS), MEM_REGION(40, 40), LOG(16, 16), CONFIG(12, 12 + Wire.MAX_CONFIG),
        /** VhostUserInflight: 20 bytes of fields, 24 with the C struct's tail padding (QEMU sends 24). */
        INFLIGHT(20, 24);

        final int min;
        final int max;

        Payload(int min, int max) {
            this.min = min;
            this.max = max;
        }
    }

    private final int id;
    private final Payload payload;
    private final int minFds;
    private final int maxFds;
    private final boolean alwaysReplies;

    Request(int id, Payload payload, int minFds, int maxFds, boolean alwaysReplies) {
        this.id = id;
        this.payload = payload;
        this.minFds = minFds;
        this.maxFds = maxFds;
        this.alwaysReplies = alwaysReplies;
    }

    public int id() { return id; }

    public Payload payload() { return payload; }

    public int minFds() { return minFds; }

    public int maxFds() { return maxFds; }

    /** The back-end replies whatever the flags say (GET_* and friends). */
    public boolean alwaysReplies() { return alwaysReplies; }

    private static final Request[] BY_ID = new Request[64];

    static {
        for (Request r : values()) BY_ID[r.id] = r;
    }

    /** The request with this id, or null if we do not implement it. */
    public static Request of(int id) {
        return id > 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
