package dev.jvbus.core.ring.ioq;

import java.lang.invoke.VarHandle;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Every offset of the vbus IOQ ring and its shm-signal, in one place. Wire-compatible with
 * AlacrityVM's {@code include/linux/ioq.h} (IOQ_RING_VER 4) and {@code include/linux/shm_signal.h}
 * (SHM_SIGNAL_VER 1) as laid out by a 64-bit little-endian C compiler; see IOQ-LAYOUT.md beside
 * this file for the structs and the source they come from.
 *
 * <pre>
 * ring head (guest address H, 8-byte aligned, {@link #ringSize(int)} bytes)
 *   +0  u32 magic  0x47fa2fe4          +4  u32 ver 4
 *   +8  shm_signal_desc (16 bytes): +0 u32 magic 0x58fa39df, +4 u32 ver 1,
 *       irq[north] at +8, irq[south] at +11, each {u8 enabled, u8 pending, u8 dirty}
 *   +24 idx[0] "valid" index {u32 head, u32 tail, u8 full} (12 bytes)
 *   +36 idx[1] "inuse" index
 *   +48 u32 count
 *   +56 ring[count] of ioq_ring_desc (32 bytes each):
 *       +0 u64 cookie, +8 u64 ptr, +16 u64 len, +24 u8 valid, +25 u8 sown (1 = south owns)
 * </pre>
 *
 * The descriptor table and the shm-signal are embedded in the head, as in vbus; they are not
 * separate guest addresses. North is the memory owner (the driver), south the device.
 */
public final class IoqLayout {
    private IoqLayout() {}

    public static final int RING_MAGIC = 0x47fa2fe4;
    public static final int RING_VERSION = 4;
    public static final int SIGNAL_MAGIC = 0x58fa39df;
    public static final int SIGNAL_VERSION = 1;

    /** ioq_locality / shm_signal_locality: north owns the memory (driver), south is the device. */
    public static final int NORTH = 0, SOUTH = 1;
    /** ioq_idx_type: index 0 is "valid", index 1 is "inuse". */
    public static final int IDX_VALID = 0, IDX_INUSE = 1;

    // ring head
    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 4;
    public static final int SIGNAL_OFFSET = 8;
    public static final int IDX_OFFSET = 24;
    public static final int COUNT_OFFSET = 48;
    public static final int DESC_TABLE_OFFSET = 56;
    /** sizeof(struct ioq_ring_head) with its one built-in descriptor (IOQ_HEAD_DESC_SIZE(1)). */
    public static final int HEAD_STRUCT_SIZE = DESC_TABLE_OFFSET + 32;
    /** Required alignment of the ring head (the descriptors hold aligned u64s). */
    public static final int HEAD_ALIGN = 8;

    // struct shm_signal_desc, relative to its start
    public static final int SIGNAL_MAGIC_OFFSET = 0;
    public static final int SIGNAL_VERSION_OFFSET = 4;
    public static final int SIGNAL_IRQ_OFFSET = 8;
    public static final int SIGNAL_IRQ_SIZE = 3;
    public static final int IRQ_ENABLED = 0, IRQ_PENDING = 1, IRQ_DIRTY = 2;
    public static final int SIGNAL_DESC_SIZE = 16;

    // struct ioq_ring_idx, relative to its start
    public static final int IDX_HEAD = 0, IDX_TAIL = 4, IDX_FULL = 8;
    public static final int IDX_SIZE = 12;

    // struct ioq_ring_desc, relative to its start
    public static final int DESC_COOKIE = 0, DESC_PTR = 8, DESC_LEN = 16, DESC_VALID = 24, DESC_SOWN = 25;
    public static final int DESC_SIZE = 32;

    /** Largest ring jvbus accepts (vbus's venet took 2048 by default; the format allows any u32). */
    public static final int MAX_COUNT = 32768;

    /** IOQ_HEAD_DESC_SIZE(count): the head plus {@code count} descriptors. */
    public static long ringSize(int count) {
        return DESC_TABLE_OFFSET + (long) DESC_SIZE * count;
    }

    /** Offset of shm-signal irq[locale] field {@code field} from the ring head. */
    public static long irqOffset(int locale, int field) {
        return SIGNAL_OFFSET + SIGNAL_IRQ_OFFSET + (long) SIGNAL_IRQ_SIZE * locale + field;
    }

    /** Offset of index {@code type} field {@code field} from the ring head. */
    public static long idxOffset(int type, int field) {
        return IDX_OFFSET + (long) IDX_SIZE * type + field;
    }

    /** Offset of descriptor {@code i} from the ring head. */
    public static long descOffset(int i) {
        return DESC_TABLE_OFFSET + (long) DESC_SIZE * i;
    }

    // Little-endian, naturally aligned accessors: the wire format is LE whatever the host is.
    static final VarHandle U8 = ValueLayout.JAVA_BYTE.varHandle();
    static final VarHandle U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    static final VarHandle U64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
}
