package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The small frames an rx queue took in during a sender's run and has not copied yet: each copied into its rx buffer
 * when the run ends ({@code NetPort.endRun}) or the queue publishes, all in one go, instead of one at a time as each
 * frame lands. Only frames that stay in the sender's buffer until then ({@code FrameMeta.stays}) are held here.
 *
 * <p><b>Why.</b> A frame's copy stores into a line of the driver's rx buffer that the driver's core holds. Such a
 * store must first fetch the line, and x86 commits stores in order, so each frame's copy held back every later store
 * of the delivery (the ring's bookkeeping, the next frame's) until its line arrived: with the front-end on the other
 * core, one such wait per frame. Made together, the copies' line fetches are in flight at once, as {@link RxHeaders}'
 * header stores are. DPDK's vhost library does the same for copies of up to 256 bytes ({@code batch_copy}).
 * Measured in bench-switch at 64 B, cores far apart: 1.09x (benchmarks/README, session 14).
 *
 * <p><b>Lifetime.</b> A held frame is read where the sender has it, so the copy must be made while it stays there:
 * by the end of the sender's run to this port, on the sender's thread, before it lets the port go. If the rx gate is
 * closed then (the control plane has the rx ring and will publish), the frames are copied into {@link #stage staging}
 * memory of this queue's own, and copied on from there when the control plane publishes. Nothing allocated per
 * frame; staging is allocated the first time it is needed.
 */
final class RxCopies {
    /** Frames held at once: a sender's batch; beyond it a frame is copied at once. */
    static final int CAPACITY = 64;
    /** Largest frame held (DPDK's MAX_BATCH_LEN); a larger copy is bound by bandwidth, not by the wait for a line. */
    static final int MAX_BYTES = 256;

    private final MemorySegment[] src = new MemorySegment[CAPACITY];
    private final MemorySegment[] dst = new MemorySegment[CAPACITY];
    private final long[] srcOffset = new long[CAPACITY];
    private final long[] dstOffset = new long[CAPACITY];
    private final long[] address = new long[CAPACITY];
    private final int[] length = new int[CAPACITY];
    private int count;
    private MemorySegment staging;

    /**
     * Holds the copy of {@code len} bytes (at most {@link #MAX_BYTES}) from {@code s} at {@code so} to {@code d} at
     * {@code dOff}, guest address {@code guestAddress} (for the dirty log); false if full (the caller copies now).
     */
    boolean hold(MemorySegment s, long so, MemorySegment d, long dOff, long guestAddress, int len) {
        int k = count;
        if (k == CAPACITY || len > MAX_BYTES) return false;
        // References stored only when they change: a reference store into these long-lived arrays runs G1's
        // post-write barrier with its StoreLoad fence (see RxHeaders#hold), which would wait for the earlier copies.
        if (src[k] != s) src[k] = s;
        if (dst[k] != d) dst[k] = d;
        srcOffset[k] = so;
        dstOffset[k] = dOff;
        address[k] = guestAddress;
        length[k] = len;
        count = k + 1;
        return true;
    }

    boolean isEmpty() {
        return count == 0;
    }

    /**
     * Makes every held copy (from where the sender has the frame, or from staging) into {@code memory}'s rx buffers,
     * then marks them dirty (after the writes, as migration needs); then holds none. A fault part-way leaves the rest
     * uncopied: the caller decides whose fault it was ({@code MappedMemoryFault}).
     */
    void copyAll(GuestMemory memory) {
        int n = count;
        count = 0;
        for (int k = 0; k < n; k++) HostMemory.copy(src[k], srcOffset[k], dst[k], dstOffset[k], length[k]);
        for (int k = 0; k < n; k++) memory.markDirty(address[k], length[k]);
    }

    /**
     * Copies every held frame from where the sender has it into this queue's own staging memory, and holds the copy
     * from there: the sender may reuse its buffers once this returns. For a sender whose run ends while the rx gate is
     * closed (it cannot write into the rx ring's memory then); the control plane's publication copies on.
     */
    void stage() {
        MemorySegment st = staging;
        if (st == null) staging = st = Arena.ofAuto().allocate((long) CAPACITY * MAX_BYTES, 8);
        for (int k = 0, n = count; k < n; k++) {
            if (src[k] == st) continue;   // staged before
            long at = (long) k * MAX_BYTES;
            HostMemory.copy(src[k], srcOffset[k], st, at, length[k]);
            src[k] = st;
            srcOffset[k] = at;
        }
    }

    /** Forgets the held copies (their frames are never published: the ring was replaced or broke). */
    void drop() {
        count = 0;
    }
}
