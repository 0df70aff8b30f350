package dev.jvbus.core.ring.virtio;

/**
 * Every offset and size of the virtio 1.x split virtqueue (spec 2.7, "Split Virtqueues"), in one
 * place. All fields are little-endian. Offsets of ring fields are relative to the start of their
 * area (descriptor table, available ring, used ring), which the driver places independently.
 *
 * <pre>
 * descriptor table  (align 16)  size * 16:   { le64 addr; le32 len; le16 flags; le16 next; }
 * available ring    (align 2)   6 + 2*size:  le16 flags; le16 idx; le16 ring[size]; le16 used_event;
 * used ring         (align 4)   6 + 8*size:  le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event;
 * </pre>
 *
 * <p>{@code used_event} and {@code avail_event} are Rusty Russell's published indices (2008), standardised
 * as {@code VIRTIO_F_EVENT_IDX}: each side publishes where it is, so the other can suppress signals and a
 * middleman can save and restore a live ring.
 */
public final class SplitRingLayout {
    /** Largest queue size the split layout allows. */
    public static final int MAX_SIZE = 32768;

    // The feature bits that shape a ring (INDIRECT_DESC, EVENT_IDX, IN_ORDER) are numbered once, in
    // feature.VirtioFeatures; the rings take the negotiated outcome as booleans and know no bit numbers.

    // Descriptor table entry.
    public static final int DESC_SIZE = 16;
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_FLAGS = 12;
    public static final int DESC_NEXT = 14;
    public static final int DESC_F_NEXT = 1;
    public static final int DESC_F_WRITE = 2;
    public static final int DESC_F_INDIRECT = 4;

    // Available ring (driver writes, device reads).
    public static final int AVAIL_FLAGS = 0;
    public static final int AVAIL_IDX = 2;
    public static final int AVAIL_RING = 4;
    public static final int AVAIL_ENTRY_SIZE = 2;
    public static final int AVAIL_F_NO_INTERRUPT = 1;

    // Used ring (device writes, driver reads).
    public static final int USED_FLAGS = 0;
    public static final int USED_IDX = 2;
    public static final int USED_RING = 4;
    public static final int USED_ELEM_SIZE = 8;
    public static final int USED_ELEM_ID = 0;
    public static final int USED_ELEM_LEN = 4;
    public static final int USED_F_NO_NOTIFY = 1;

    // Alignment the spec requires of each area (2.7, table "Virtqueue Part Alignment").
    public static final int DESC_ALIGN = 16;
    public static final int AVAIL_ALIGN = 2;
    public static final int USED_ALIGN = 4;

    private final int size;

    private SplitRingLayout(int size) {
        this.size = size;
    }

    /** The layout of a queue of {@code size} descriptors; refuses sizes that are not a power of two in 1..32768. */
    public static SplitRingLayout of(int size) {
        if (!isValidSize(size)) throw new IllegalArgumentException("split queue size must be a power of two in 1.." + MAX_SIZE + ": " + size);
        return new SplitRingLayout(size);
    }

    /**
     * The split format's own limit, which the mask arithmetic needs; it guards code that mounts a ring
     * with no device behind it (the driver side, the client library). A size from a driver or a saved
     * state has been asked of {@code QueueSpec.accepts} before a ring sees it.
     */
    public static boolean isValidSize(int size) {
        return size > 0 && size <= MAX_SIZE && Integer.bitCount(size) == 1;
    }

    public int size() { return size; }

    /** {@code size - 1}: ring slot of a free-running u16 index is {@code idx & mask()}. */
    public int mask() { return size - 1; }

    public long descTableBytes() { return (long) DESC_SIZE * size; }

    public long availRingBytes() { return AVAIL_RING + (long) AVAIL_ENTRY_SIZE * size + 2; }

    public long usedRingBytes() { return USED_RING + (long) USED_ELEM_SIZE * size + 2; }

    /** Offset of descriptor {@code i} in the descriptor table (or in an indirect table). */
    public static long descOffset(int i) { return (long) DESC_SIZE * i; }

    /** Offset of available-ring slot {@code slot} (0..size-1). */
    public static long availEntryOffset(int slot) { return AVAIL_RING + (long) AVAIL_ENTRY_SIZE * slot; }

    /** Offset of {@code used_event} in the available ring: just after the ring entries. */
    public long usedEventOffset() { return AVAIL_RING + (long) AVAIL_ENTRY_SIZE * size; }

    /** Offset of used-ring element {@code slot} (0..size-1). */
    public static long usedElemOffset(int slot) { return USED_RING + (long) USED_ELEM_SIZE * slot; }

    /** Offset of {@code avail_event} in the used ring: just after the ring elements. */
    public long availEventOffset() { return USED_RING + (long) USED_ELEM_SIZE * size; }

    /**
     * {@code vring_need_event} from Linux {@code include/uapi/linux/virtio_ring.h}: true when the other
     * side asked to be signalled at {@code eventIdx} and that index lies in {@code [oldIdx, newIdx)},
     * i.e. was passed since the last decision. All three are free-running u16 values.
     */
    public static boolean needEvent(int eventIdx, int newIdx, int oldIdx) {
        return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    }

    @Override
    public String toString() {
        return "SplitRingLayout[size=" + size + ", desc=" + descTableBytes() + "B, avail=" + availRingBytes()
                + "B, used=" + usedRingBytes() + "B]";
    }
}
