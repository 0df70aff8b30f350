package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.net.FrameOffload;
import java.lang.foreign.MemorySegment;

/**
 * The {@code virtio_net_hdr_v1} of each frame an rx queue took in and has not published yet, written when the
 * queue publishes ({@link VirtioNetDevice}'s flush), all in one go, instead of one at a time as each frame lands.
 *
 * <p><b>Why.</b> The header is 12 bytes at the start of the driver's buffer: a part of a cache line the driver's
 * core owns (it wrote its own tx header there when the buffer last carried a frame). A store to part of a line
 * must first fetch the line from that core, and x86 commits stores in order, so a frame's header store held back
 * every later store of the delivery until the line arrived: with the front-end on the other core, one such
 * wait per frame. The frame's own bytes (whole lines, for a 64-byte frame) did not cost that. Written together at
 * publication, the headers' line fetches are in flight at once. Measured in bench-switch at 64 B with the two
 * cores far apart (benchmarks/README.md, session 11): 4.4 -> 5.4 Mpps; not writing the header at all (wrong, only
 * to bound it) made 6.4.
 *
 * <p>A header is the driver's to read only after the used index that publishes its frame, so writing it just
 * before that index is the same to the driver. Each header's dirty-log mark is made after its write (migration
 * copies a page marked dirty after the mark; a write after the mark could be missed). Held in arrays sized once;
 * nothing allocated per frame. Touched only under the port's delivery lock, like the rest of the rx queue's
 * delivery state; dropped, unwritten, with the frames they belong to when the ring is replaced or broken.
 */
final class RxHeaders {
    /** Headers held at once: a sender's batch ({@link VirtioNetDevice#TX_BATCH}); beyond it a header is written at once. */
    static final int CAPACITY = 64;

    private final MemorySegment[] segment = new MemorySegment[CAPACITY];
    private final long[] offset = new long[CAPACITY];
    private final long[] address = new long[CAPACITY];
    private final long[] head = new long[CAPACITY];
    private final int[] tail = new int[CAPACITY];
    private final boolean[] written = new boolean[CAPACITY];
    private int count;

    /**
     * Holds the header of a frame whose first buffer descriptor (guest address {@code guestAddress}, at
     * {@code at} in {@code s}) holds all 12 bytes; false if full (the caller writes it now).
     */
    boolean hold(MemorySegment s, long at, long guestAddress, FrameOffload offload, int numBuffers) {
        int k = count;
        if (k == CAPACITY) return false;
        // Stored only when it changes (it almost never does: one rx ring, one memory table). A reference store into
        // this long-lived array runs G1's post-write barrier, which on JDK 25 has a StoreLoad fence (for an old
        // array) that waits for every store before it: here the frame's copy into the driver's buffer. Stored per
        // frame, that was 2 % of the switch's CPU per frame in one thread; under ParallelGC, no difference
        // (benchmarks/README, session 14).
        if (segment[k] != s) segment[k] = s;
        offset[k] = at;
        address[k] = guestAddress;
        head[k] = offload.vnetV1Head();
        tail[k] = offload.vnetV1Tail(numBuffers);
        count = k + 1;
        return true;
    }

    /**
     * Writes every held header into {@code memory}'s buffers and marks them dirty, except where the buffer already
     * holds that very header; then holds none.
     *
     * <p>Why compare first: a buffer's header line usually holds the header it needs already. A polling front-end
     * (DPDK's virtio PMD) sends a received buffer on with the header in the same place, and clears it only where a
     * field differs; what comes back to us to fill again is, at 64 B, mostly a header of zeros and one buffer. A
     * store would take the line from the front-end's core (and make it fetch the line back to read the header); a
     * load leaves both cores a copy. DPDK's vhost library does the same ({@code ASSIGN_UNLESS_EQUAL}). Measured in
     * bench-switch at 64 B, cores far apart: 1.11x (benchmarks/README, session 13). An unwritten header changed no
     * byte, so migration has nothing to copy again: it is not marked dirty.
     */
    void writeAll(GuestMemory memory) {
        int n = count;
        count = 0;
        for (int k = 0; k < n; k++) {
            boolean w = !FrameOffload.holdsVnetV1(segment[k], offset[k], head[k], tail[k]);
            if (w) FrameOffload.writeVnetV1(segment[k], offset[k], head[k], tail[k]);
            written[k] = w;
        }
        for (int k = 0; k < n; k++) if (written[k]) memory.markDirty(address[k], NetHeader.SIZE);
    }

    /** Forgets the held headers unwritten (their frames were never published: the ring was replaced or broke). */
    void drop() {
        count = 0;
    }
}
