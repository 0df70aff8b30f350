package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.memory.HostMemory;
import dev.jvbus.core.memory.MemoryRegion;
import java.lang.foreign.MemorySegment;

/**
 * One available buffer as the device sees it after {@link SplitVirtqueue#pop}: the head index and the
 * chain's data descriptors (indirect tables already resolved), readable ones first, each already
 * translated and bounds-checked against guest memory. Reusable: arrays are sized to the queue at
 * creation and refilled by every pop, so a device worker allocates nothing per buffer. Its contents
 * stay valid until the next pop into the same object.
 */
public final class DescriptorChain {
    // Descriptor 0, which every chain has and almost every chain is (a frame, a request), in fields; descriptors
    // 1.. in the arrays at their index ([0] unused). A pop then stores and the device reads the first descriptor
    // without an array's bounds check (a load of its length, a compare and a branch per access): 23 of the 372
    // instructions the single-thread loop's receive ran per message (benchmarks/README, "Instructions per message,
    // session 17").
    private long address0;
    private int length0;
    private MemoryRegion region0;
    private MemorySegment view0;
    private long viewDelta0;
    private final long[] address;
    private final int[] length;
    private final MemoryRegion[] region;
    // Per descriptor, where a hot path accesses its region (HostMemory.view of its segment) and what turns a guest
    // address into an offset there: set with region[i], and only when region[i] changes, so that hostSegment and
    // hostOffset are a load each instead of a test of the segment's kind and scope per call.
    private final MemorySegment[] view;
    private final long[] viewDelta;
    private final int capacity;        // the arrays' length, one load for the check every pop makes
    private int head = -1;
    private int count;
    /** Entries of {@code region} that may hold a reference: [0, filled). */
    private int filled;
    private int readableCount;
    private long readableBytes;
    private long writableBytes;

    /** A chain able to hold up to {@code capacity} descriptors (use the queue size). */
    public DescriptorChain(int capacity) {
        if (capacity <= 0 || capacity > SplitRingLayout.MAX_SIZE)
            throw new IllegalArgumentException("capacity must be in 1.." + SplitRingLayout.MAX_SIZE + ": " + capacity);
        this.capacity = capacity;
        address = new long[capacity];
        length = new int[capacity];
        region = new MemoryRegion[capacity];
        view = new MemorySegment[capacity];
        viewDelta = new long[capacity];
    }

    public int capacity() { return capacity; }

    /** The head descriptor index: the id to hand back with {@link SplitVirtqueue#pushUsed}. */
    public int head() { return head; }

    /** Number of data descriptors (indirect table descriptors are not counted, their entries are). */
    public int count() { return count; }

    public int readableCount() { return readableCount; }

    public int writableCount() { return count - readableCount; }

    /** Total bytes the device may read (u32 range). */
    public long readableBytes() { return readableBytes; }

    /** Total bytes the device may write (u32 range). */
    public long writableBytes() { return writableBytes; }

    /** True if descriptor {@code i} is device-writable; all writable ones come after all readable ones. */
    public boolean isWritable(int i) { check(i); return i >= readableCount; }

    /** Guest address of descriptor {@code i}. */
    public long address(int i) { check(i); return i == 0 ? address0 : address[i]; }

    /** Length of descriptor {@code i} in bytes (u32, so 0..2^32-1). */
    public long length(int i) { check(i); return (i == 0 ? length0 : length[i]) & 0xffff_ffffL; }

    /** The host segment holding descriptor {@code i}'s buffer; access it at {@link #offset(int)}. */
    public MemorySegment segment(int i) { check(i); return (i == 0 ? region0 : region[i]).segment(); }

    /** Offset of descriptor {@code i}'s buffer within {@link #segment(int)}. */
    public long offset(int i) { check(i); return i == 0 ? address0 - region0.guestAddress() : address[i] - region[i].guestAddress(); }

    /**
     * Where to read or write descriptor {@code i}'s buffer on a hot path: {@link HostMemory#ALL} when its region is
     * memory FFM never closes ({@link HostMemory#isDirect}), whose checks then fold away; else {@link #segment(int)}.
     * The range is the descriptor's, checked against its region by the ring; access it at {@link #hostOffset(int)}.
     */
    public MemorySegment hostSegment(int i) {
        check(i);
        return i == 0 ? view0 : view[i];
    }

    /** Offset of descriptor {@code i}'s buffer within {@link #hostSegment(int)}: its host address when that is {@link HostMemory#ALL}. */
    public long hostOffset(int i) {
        check(i);
        return i == 0 ? address0 + viewDelta0 : address[i] + viewDelta[i];
    }

    private void check(int i) {
        if (i < 0 || i >= count) throw new IndexOutOfBoundsException("descriptor " + i + " of " + count);
    }

    // ---- filled by SplitVirtqueue only; it has validated every value ----
    void reset(int head) {
        this.head = head;
        count = 0;                     // regions are overwritten only where they change; finish() clears the rest
        readableCount = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** The whole chain is one descriptor (the common case: no reset loop, no running sums). */
    void single(int head, long addr, int len, boolean writable, MemoryRegion r) {
        this.head = head;
        for (int i = 1; i < filled; i++) forget(i);   // do not pin regions of an old memory table
        filled = 1;
        address0 = addr;
        length0 = len;
        // Almost every buffer lies in the same region as the last one: skip the reference store, whose GC
        // write barrier (this chain is long-lived, so an old object) costs more than the load.
        if (region0 != r) setRegion0(r);
        count = 1;
        long ulen = len & 0xffff_ffffL;
        if (writable) {
            readableCount = 0;
            readableBytes = 0;
            writableBytes = ulen;
        } else {
            readableCount = 1;
            readableBytes = ulen;
            writableBytes = 0;
        }
    }

    void add(long addr, int len, boolean writable, MemoryRegion r) {
        if (count == 0) {
            address0 = addr;
            length0 = len;
            if (region0 != r) setRegion0(r);       // as in single(): no write barrier for the usual same region
        } else {
            address[count] = addr;
            length[count] = len;
            if (region[count] != r) setRegion(count, r);
        }
        count++;
        if (count > filled) filled = count;
        if (writable) writableBytes += len & 0xffff_ffffL;
        else {
            readableCount++;
            readableBytes += len & 0xffff_ffffL;
        }
    }

    /** The chain is complete: drop the regions of longer chains before it (do not pin regions of an old memory table). */
    void finish() {
        for (int i = count; i < filled; i++) forget(i);
        filled = count;
    }

    /** Before the first pop: the region the first descriptor most likely lies in (see {@link SplitVirtqueue#newChain}). */
    void startIn(MemoryRegion r) {
        if (count != 0) throw new IllegalStateException("chain already holds a buffer");
        setRegion0(r);
    }

    private void setRegion0(MemoryRegion r) {
        MemorySegment s = r.segment();
        region0 = r;
        view0 = HostMemory.view(s);
        viewDelta0 = HostMemory.offsetInView(s, -r.guestAddress());
    }

    private void setRegion(int i, MemoryRegion r) {   // i >= 1
        MemorySegment s = r.segment();
        region[i] = r;
        view[i] = HostMemory.view(s);
        viewDelta[i] = HostMemory.offsetInView(s, -r.guestAddress());
    }

    private void forget(int i) {
        if (i == 0) {
            region0 = null;
            view0 = null;
        } else {
            region[i] = null;
            view[i] = null;
        }
    }

    @Override
    public String toString() {
        return "DescriptorChain[head=" + head + ", readable=" + readableCount + "/" + readableBytes + "B, writable="
                + writableCount() + "/" + writableBytes + "B]";
    }
}
