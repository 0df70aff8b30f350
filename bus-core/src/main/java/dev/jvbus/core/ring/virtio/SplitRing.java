package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.memory.HostMemory.host;
import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.HostMemory;
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
 *
 * <p><b>Direct access</b> ({@link #direct}). Every FFM access to a segment held in a field pays a class
 * check, a bounds check and a liveness check of the segment's scope (two dependent loads); a 16-byte
 * message makes about six ring-area accesses on the two sides, and these checks were the hottest single
 * instructions of the single-thread loop (benchmarks/README, "CPU per message"). When the ring's memory
 * lives in the global scope, FFM never unmaps it, so the liveness check proves nothing; the areas are
 * then read and written at their host addresses through {@link #HOST} (a constant, so C2 folds its class,
 * scope and bounds away) and the ring's own offsets are the only bound. Those offsets are safe by
 * construction, not by a guest's good will: each is a fixed header offset inside an area whose size and
 * placement {@link #map} checked, a slot taken {@code & mask}, or a descriptor index the caller has checked
 * {@code < size} (head, chain link) or chosen itself (driver). No guest-written value is ever added to a
 * base here without one of those; the fuzz targets run both modes with guard bands around the regions.
 *
 * <p>Who may unmap global-scope memory, and why a ring never meets an unmapped page: memory the process
 * allocated for good (benchmarks, tests) is never unmapped; a connector's mapping of a peer's file
 * ({@code Memfd.adopt}: vhost-user's memory table, the shm connector's regions) is unmapped by its
 * {@link dev.jvbus.core.sys.MappingLifetime} only once its owner (the session) let go <em>and</em> every
 * thread that may touch it has provably stopped: each queue worker holds the memory of its rings until its
 * thread has exited ({@code QueueWorker.holding}), and an rx gate that gave up waiting for a delivery holds
 * the rx rings' memory until that delivery left ({@code RxGate}); the session's own thread only touches it
 * before it lets go. A worker left behind by a bounded stop therefore finds its ring still mapped however
 * late it returns (RingMemoryLifetimeTest, SessionMemoryLifetimeTest), instead of a SIGSEGV that would take
 * the whole bus down. Memory in a closable arena (a memfd this process created, FFM's automatic arenas)
 * keeps the checked accesses, and a late access there throws.
 */
final class SplitRing {
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Descriptors in indirect tables need not be aligned; the ring's own table is, but one reader serves both. */
    static final ValueLayout.OfShort U16_UNALIGNED = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt U32_UNALIGNED = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong U64_UNALIGNED = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_VH = U16.varHandle();   // coordinates (MemorySegment, long offset)
    /** All of the address space in the global scope: what {@link #direct} rings access at host addresses. */
    private static final MemorySegment HOST = HostMemory.ALL;

    final int queue;
    final SplitRingLayout layout;
    final int size;
    final int mask;
    final long descAddr, availAddr, usedAddr;
    final MemorySegment desc, avail, used;
    private final long usedEventOff, availEventOff;
    /** The areas lie in memory that is never unmapped (global scope): accessed at their host addresses. */
    final boolean direct;
    private final long descBase, availBase, usedBase;   // host addresses of the areas (used only when direct)

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
        this.direct = HostMemory.isDirect(desc) && HostMemory.isDirect(avail) && HostMemory.isDirect(used);
        this.descBase = desc.address();
        this.availBase = avail.address();
        this.usedBase = used.address();
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
    int availIdxAcquire() { return u16Acquire(avail, availBase, AVAIL_IDX); }

    void availIdxRelease(int idx) { u16Release(avail, availBase, AVAIL_IDX, idx); }

    int availFlagsAcquire() { return u16Acquire(avail, availBase, AVAIL_FLAGS); }

    void availFlagsRelease(int flags) { u16Release(avail, availBase, AVAIL_FLAGS, flags); }

    // Plain accesses use the unaligned layouts: the areas' alignment was checked once at map(), so a
    // per-access alignment check would only cost (the same instruction either way on x86 and arm64).
    // slot: 0..size-1 (callers take it & mask), so the offset stays inside the area map() checked.
    int availEntry(int slot) {
        long off = availEntryOffset(slot);
        return (direct ? HOST.get(U16_UNALIGNED, host(availBase + off)) : avail.get(U16_UNALIGNED, off)) & 0xffff;
    }

    void availEntry(int slot, int head) {
        long off = availEntryOffset(slot);
        if (direct) HOST.set(U16_UNALIGNED, host(availBase + off), (short) head);
        else avail.set(U16_UNALIGNED, off, (short) head);
    }

    int usedEventAcquire() { return u16Acquire(avail, availBase, usedEventOff); }

    void usedEventRelease(int idx) { u16Release(avail, availBase, usedEventOff, idx); }

    // ---- used ring ----
    int usedIdxAcquire() { return u16Acquire(used, usedBase, USED_IDX); }

    void usedIdxRelease(int idx) { u16Release(used, usedBase, USED_IDX, idx); }

    int usedFlagsAcquire() { return u16Acquire(used, usedBase, USED_FLAGS); }

    void usedFlagsRelease(int flags) { u16Release(used, usedBase, USED_FLAGS, flags); }

    int usedElemId(int slot) { return (int) usedElem(slot); }

    int usedElemLen(int slot) { return (int) (usedElem(slot) >>> 32); }

    /** Used element {@code slot} (0..size-1) in one 8-byte load: id in the low 32 bits, len in the high 32 (little-endian). */
    long usedElem(int slot) {
        long off = usedElemOffset(slot);
        return direct ? HOST.get(U64_UNALIGNED, host(usedBase + off)) : used.get(U64_UNALIGNED, off);
    }

    void usedElem(int slot, int id, int len) {   // one 8-byte store: le32 id, le32 len
        usedElem(slot, usedElemWord(id, len));
    }

    /** A used element as the one 8-byte word {@link #usedElem(int, long)} stores: id in the low 32 bits, len in the high. */
    static long usedElemWord(int id, int len) {
        return (id & 0xffff_ffffL) | ((long) len << 32);
    }

    void usedElem(int slot, long elem) {
        long off = usedElemOffset(slot);
        if (direct) HOST.set(U64_UNALIGNED, host(usedBase + off), elem);
        else used.set(U64_UNALIGNED, off, elem);
    }

    int availEventAcquire() { return u16Acquire(used, usedBase, availEventOff); }

    void availEventRelease(int idx) { u16Release(used, usedBase, availEventOff, idx); }

    // ---- descriptor table: i is 0..size-1 (a head or link the device checked, or the driver's own choice) ----
    void writeDesc(int i, long addr, int len, int flags, int next) {   // two 8-byte stores: addr, then len|flags|next
        long off = descOffset(i), word = descWord(len, flags, next);
        if (direct) {
            HOST.set(U64_UNALIGNED, host(descBase + off + DESC_ADDR), addr);
            HOST.set(U64_UNALIGNED, host(descBase + off + DESC_LEN), word);
        } else {
            desc.set(U64_UNALIGNED, off + DESC_ADDR, addr);
            desc.set(U64_UNALIGNED, off + DESC_LEN, word);
        }
    }

    /** Descriptor {@code i}'s entry at its host address, or -1 unless the table is {@link #direct} (see {@code SplitVirtqueue}). */
    long descHostAddress(int i) {
        return direct ? descBase + descOffset(i & mask) : -1;
    }

    /** Descriptor {@code i}'s address word. */
    long descAddr(int i) {
        long off = descOffset(i) + DESC_ADDR;
        return direct ? HOST.get(U64_UNALIGNED, host(descBase + off)) : desc.get(U64_UNALIGNED, off);
    }

    /** Descriptor {@code i}'s len, flags and next as one little-endian 8-byte word (see {@link #descWord}). */
    long descWord(int i) {
        long off = descOffset(i) + DESC_LEN;
        return direct ? HOST.get(U64_UNALIGNED, host(descBase + off)) : desc.get(U64_UNALIGNED, off);
    }

    // Control words at a fixed offset inside an area: acquire loads and release stores (2-byte aligned: map() checked).
    private int u16Acquire(MemorySegment area, long base, long off) {
        // Each call cast where it stands: a signature-polymorphic call inside a ?: would return Object (a boxed Short).
        short v = direct ? (short) U16_VH.getAcquire(HOST, base + off) : (short) U16_VH.getAcquire(area, off);
        return v & 0xffff;
    }

    private void u16Release(MemorySegment area, long base, long off, int value) {
        if (direct) U16_VH.setRelease(HOST, base + off, (short) value);
        else U16_VH.setRelease(area, off, (short) value);
    }

    /** le32 len, le16 flags, le16 next as the one little-endian 8-byte word at {@code DESC_LEN}. */
    static long descWord(int len, int flags, int next) {
        return (len & 0xffff_ffffL) | ((long) (flags & 0xffff) << 32) | ((long) (next & 0xffff) << 48);
    }
}
