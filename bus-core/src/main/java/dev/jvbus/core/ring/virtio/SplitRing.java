package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The three areas of one split ring, mapped once at setup as bounded slices of guest memory, with
 * the field accessors both sides use. The cross-side control words (idx, flags, event indices) are
 * read with acquire and written with release; ring entries and descriptors are plain accesses ordered
 * by those. Callers add the full fences the spec asks for (publish idx, then read the other side's
 * event/flags). Every access stays inside a slice, so a guest value can never make us read outside
 * the mapping.
 */
final class SplitRing {
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Descriptors in indirect tables need not be aligned; the ring's own table is, but one reader serves both. */
    static final ValueLayout.OfShort U16_UNALIGNED = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32_UNALIGNED = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64_UNALIGNED = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_VH = U16.varHandle();   // coordinates (MemorySegment, long offset)

    final int queue;
    final SplitRingLayout layout;
    final int size;
    final int mask;
    final long descAddr, availAddr, usedAddr;
    final MemorySegment desc, avail, used;
    private final long usedEventOff, availEventOff;

    private SplitRing(int queue, SplitRingLayout layout, long descAddr, long availAddr, long usedAddr,
                      MemorySegment desc, MemorySegment avail, MemorySegment used) {
        this.queue = queue;
        this.layout = layout;
        this.size = layout.size();
        this.mask = layout.mask();
        this.descAddr = descAddr;
        this.availAddr = availAddr;
        this.usedAddr = usedAddr;
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.usedEventOff = layout.usedEventOffset();
        this.availEventOff = layout.availEventOffset();
    }

    /** Checks size, alignment and placement of the three areas (the setup-time guest values) and maps them. */
    static SplitRing map(int queue, int size, long descAddr, long availAddr, long usedAddr, GuestMemory memory)
            throws QueueFault {
        if (!SplitRingLayout.isValidSize(size))
            throw new QueueFault(queue, QueueFault.Reason.BAD_QUEUE_SIZE, "size " + size);
        SplitRingLayout layout = SplitRingLayout.of(size);
        MemorySegment d = area(queue, memory, "descriptor table", descAddr, layout.descTableBytes(), DESC_ALIGN);
        MemorySegment a = area(queue, memory, "available ring", availAddr, layout.availRingBytes(), AVAIL_ALIGN);
        MemorySegment u = area(queue, memory, "used ring", usedAddr, layout.usedRingBytes(), USED_ALIGN);
        return new SplitRing(queue, layout, descAddr, availAddr, usedAddr, d, a, u);
    }

    private static MemorySegment area(int queue, GuestMemory memory, String what, long addr, long bytes, int align)
            throws QueueFault {
        if ((addr & (align - 1)) != 0)
            throw new QueueFault(queue, QueueFault.Reason.BAD_RING_ADDRESS,
                    what + " at 0x" + Long.toHexString(addr) + " is not " + align + "-byte aligned");
        MemoryRegion r;
        try {
            r = memory.region(addr, bytes);
        } catch (GuestMemoryException e) {
            throw new QueueFault(queue, QueueFault.Reason.BAD_RING_ADDRESS, what + ": " + e.getMessage());
        }
        MemorySegment s = r.segment().asSlice(addr - r.guestAddress(), bytes);
        // Acquire/release accesses need the host address aligned too (a region may start at an odd host offset).
        if ((s.address() & (align - 1)) != 0)
            throw new QueueFault(queue, QueueFault.Reason.BAD_RING_ADDRESS,
                    what + " at 0x" + Long.toHexString(addr) + " maps to a misaligned host address");
        return s;
    }

    /** The driver's setup of a fresh ring: the header it owns (avail flags, idx, used_event) back to 0. */
    void resetAvailHeader() {
        availFlagsRelease(0);
        usedEventRelease(0);
        availIdxRelease(0);
    }

    /** The device's setup of a freshly enabled ring: the header it owns (used flags, idx, avail_event) back to 0. */
    void resetUsedHeader() {
        usedFlagsRelease(0);
        availEventRelease(0);
        usedIdxRelease(0);
    }

    // ---- available ring ----
    int availIdxAcquire() { return (short) U16_VH.getAcquire(avail, (long) AVAIL_IDX) & 0xffff; }

    void availIdxRelease(int idx) { U16_VH.setRelease(avail, (long) AVAIL_IDX, (short) idx); }

    int availFlagsAcquire() { return (short) U16_VH.getAcquire(avail, (long) AVAIL_FLAGS) & 0xffff; }

    void availFlagsRelease(int flags) { U16_VH.setRelease(avail, (long) AVAIL_FLAGS, (short) flags); }

    // Plain accesses use the unaligned layouts: the areas' alignment was checked once at map(), so a
    // per-access alignment check would only cost (the same instruction either way on x86 and arm64).
    int availEntry(int slot) { return avail.get(U16_UNALIGNED, availEntryOffset(slot)) & 0xffff; }

    void availEntry(int slot, int head) { avail.set(U16_UNALIGNED, availEntryOffset(slot), (short) head); }

    int usedEventAcquire() { return (short) U16_VH.getAcquire(avail, usedEventOff) & 0xffff; }

    void usedEventRelease(int idx) { U16_VH.setRelease(avail, usedEventOff, (short) idx); }

    // ---- used ring ----
    int usedIdxAcquire() { return (short) U16_VH.getAcquire(used, (long) USED_IDX) & 0xffff; }

    void usedIdxRelease(int idx) { U16_VH.setRelease(used, (long) USED_IDX, (short) idx); }

    int usedFlagsAcquire() { return (short) U16_VH.getAcquire(used, (long) USED_FLAGS) & 0xffff; }

    void usedFlagsRelease(int flags) { U16_VH.setRelease(used, (long) USED_FLAGS, (short) flags); }

    int usedElemId(int slot) { return used.get(U32_UNALIGNED, usedElemOffset(slot) + USED_ELEM_ID); }

    int usedElemLen(int slot) { return used.get(U32_UNALIGNED, usedElemOffset(slot) + USED_ELEM_LEN); }

    /** Used element {@code slot} in one 8-byte load: id in the low 32 bits, len in the high 32 (little-endian). */
    long usedElem(int slot) { return used.get(U64_UNALIGNED, usedElemOffset(slot)); }

    void usedElem(int slot, int id, int len) {   // one 8-byte store: le32 id, le32 len
        used.set(U64_UNALIGNED, usedElemOffset(slot), (id & 0xffff_ffffL) | ((long) len << 32));
    }

    int availEventAcquire() { return (short) U16_VH.getAcquire(used, availEventOff) & 0xffff; }

    void availEventRelease(int idx) { U16_VH.setRelease(used, availEventOff, (short) idx); }

    // ---- descriptor table (driver writes) ----
    void writeDesc(int i, long addr, int len, int flags, int next) {   // two 8-byte stores: addr, then len|flags|next
        long off = descOffset(i);
        desc.set(U64_UNALIGNED, off + DESC_ADDR, addr);
        desc.set(U64_UNALIGNED, off + DESC_LEN, descWord(len, flags, next));
    }

    /** le32 len, le16 flags, le16 next as the one little-endian 8-byte word at {@code DESC_LEN}. */
    static long descWord(int len, int flags, int next) {
        return (len & 0xffff_ffffL) | ((long) (flags & 0xffff) << 32) | ((long) (next & 0xffff) << 48);
    }
}
