package dev.jvbus.connector.shm.protocol;

/**
 * DEVCALL function numbers the bus itself answers, the same for every device model (the generic
 * half of a vbus device: status, features, config, queues). Numbers from {@link #MODEL_BASE} on
 * belong to the device's model ({@code venet}'s MACQUERY, LINKUP, ...). Payload layouts are in
 * PROTOCOL.md; all little-endian.
 */
public enum BusCall {
    /** in: nothing; out: u64 offered features. */
    GET_FEATURES(0x01),
    /** in: u64 features the driver acks; out: nothing. Checked at FEATURES_OK. */
    SET_FEATURES(0x02),
    /** in: nothing; out: u32 status bits. */
    GET_STATUS(0x03),
    /** in: u32 status (0 resets); out: u32 status after the write. */
    SET_STATUS(0x04),
    /** in: u32 offset, u32 length; out: the bytes. */
    READ_CONFIG(0x05),
    /** in: u32 offset, then the bytes; out: nothing. */
    WRITE_CONFIG(0x06),
    /** in: nothing; out: u32 config generation. */
    CONFIG_GENERATION(0x07),
    /** in: u16 queue, u16 size, u64 desc, u64 avail (IOQ: ring head), u64 used (IOQ: 0); out: nothing. */
    SET_QUEUE(0x08),
    /** in: u16 queue, u8 enable; out: nothing. */
    ENABLE_QUEUE(0x09),
    /** in: nothing; out: u64 negotiated features. */
    GET_NEGOTIATED(0x0A),
    /**
     * in: u64 features; out: nothing. A driver that outlived its bus takes up a fresh device (status 0) with the
     * features it had negotiated: ACKNOWLEDGE, DRIVER, FEATURES_OK with exactly those, or a refusal naming what
     * this device neither offers nor honours in a saved driver (DeviceModel#featuresHonouredOnRestore, as a
     * restore). Then RESUME_QUEUE per queue, SIGNAL, DRIVER_OK (PROTOCOL.md, "Resuming after a bus restart").
     */
    RESUME_DRIVER(0x0B),
    /**
     * in: as SET_QUEUE; out: u16 the index the ring carries on from. A split ring already in use: the device
     * takes its position from the ring in the driver's memory (its used index; what was available after it is
     * taken again) instead of starting at zero.
     */
    RESUME_QUEUE(0x0C);

    /** First function number that belongs to the model: wire func {@code MODEL_BASE + n} is the model's verb {@code n}. */
    public static final int MODEL_BASE = 0x100;

    private static final BusCall[] BY_FUNC = new BusCall[RESUME_QUEUE.func + 1];

    static {
        for (BusCall c : values()) BY_FUNC[c.func] = c;
    }

    /** The DEVCALL function number on the wire. */
    public final int func;

    BusCall(int func) {
        this.func = func;
    }

    /** The bus call with wire number {@code func}, or null (a model's call, or no call at all). */
    public static BusCall of(int func) {
        return func >= 0 && func < BY_FUNC.length ? BY_FUNC[func] : null;
    }

    /** A name for logs and error texts, for any wire number. */
    public static String name(int func) {
        BusCall c = of(func);
        if (c != null) return c.name();
        return func >= MODEL_BASE ? "model call " + (func - MODEL_BASE) : "bus call 0x" + Integer.toHexString(func);
    }

    // ---- payload encoders (the client's side; the bus decodes with PayloadReader) ----

    public static byte[] u32(int v) {
        return le(4).putInt(v).array();
    }

    public static byte[] u64(long v) {
        return le(8).putLong(v).array();
    }

    public static byte[] readConfig(int offset, int length) {
        return le(8).putInt(offset).putInt(length).array();
    }

    public static byte[] writeConfig(int offset, byte[] data) {
        return le(4 + data.length).putInt(offset).put(data).array();
    }

    public static byte[] setQueue(int queue, int size, long desc, long avail, long used) {
        return le(28).putShort((short) queue).putShort((short) size).putLong(desc).putLong(avail).putLong(used).array();
    }

    public static byte[] u16(int v) {
        return le(2).putShort((short) v).array();
    }

    public static byte[] enableQueue(int queue, boolean enable) {
        return le(3).putShort((short) queue).put((byte) (enable ? 1 : 0)).array();
    }

    private static java.nio.ByteBuffer le(int n) {
        return java.nio.ByteBuffer.allocate(n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    }
}
