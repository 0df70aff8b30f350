package dev.jvbus.connector.shm.protocol;

/**
 * DEVCALL function numbers the bus itself answers, the same for every device model (the generic
 * half of a vbus device: status, features, config, queues). Numbers from {@link #MODEL_BASE} on
 * belong to the device's model ({@code venet}'s MACQUERY, LINKUP, ...). Payload layouts are in
 * PROTOCOL.md; all little-endian.
 */
public final class BusCall {
    private BusCall() {}

    /** in: nothing; out: u64 offered features. */
    public static final int GET_FEATURES = 0x01;
    /** in: u64 features the driver acks; out: nothing. Checked at FEATURES_OK. */
    public static final int SET_FEATURES = 0x02;
    /** in: nothing; out: u32 status bits. */
    public static final int GET_STATUS = 0x03;
    /** in: u32 status (0 resets); out: u32 status after the write. */
    public static final int SET_STATUS = 0x04;
    /** in: u32 offset, u32 length; out: the bytes. */
    public static final int READ_CONFIG = 0x05;
    /** in: u32 offset, then the bytes; out: nothing. */
    public static final int WRITE_CONFIG = 0x06;
    /** in: nothing; out: u32 config generation. */
    public static final int CONFIG_GENERATION = 0x07;
    /** in: u16 queue, u16 size, u64 desc, u64 avail (IOQ: ring head), u64 used (IOQ: 0); out: nothing. */
    public static final int SET_QUEUE = 0x08;
    /** in: u16 queue, u8 enable; out: nothing. */
    public static final int ENABLE_QUEUE = 0x09;
    /** in: nothing; out: u64 negotiated features. */
    public static final int GET_NEGOTIATED = 0x0A;

    /** First function number that belongs to the model. */
    public static final int MODEL_BASE = 0x100;
}
