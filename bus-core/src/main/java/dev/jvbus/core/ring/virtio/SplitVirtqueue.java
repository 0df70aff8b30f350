package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.HostMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.ring.RingPosition;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The device side of a virtio 1.x split virtqueue over shared guest memory.
 *
 * <p>A single worker thread owns an instance. Its loop:
 * <pre>{@code
 * for (;;) {
 *     while (q.pop(chain)) { ...use chain...; q.pushUsed(chain.head(), written); }
 *     q.publishUsed();                       // one release store + one notify decision per batch
 *     if (q.enableKicks()) { q.disableKicks(); continue; }   // raced with the driver: go on
 *     wait on the kick doorbell; q.disableKicks();
 * }
 * }</pre>
 *
 * <p>Every guest-controlled value is checked here, once, where it is read: the ring areas at setup,
 * the available index, each head, each descriptor (index, flags, address, length, chain shape).
 * A violation throws a {@link QueueFault} with its specific {@link Reason} and stops the queue: every
 * later call that touches the ring rethrows the same fault (the device goes NEEDS_RESET). No guest
 * value can make this class loop forever, allocate, or read outside the ring's slices or a region.
 *
 * <p>Ordering (spec 2.7.7, 2.7.8, 2.7.10): the available index is read with acquire before its ring
 * entries and descriptors; used elements are written plainly and published by a release store of
 * the used index; a full fence separates publishing the used index (or enabling kicks) from reading
 * {@code used_event}/flags (or re-reading the available index).
 */
public final class SplitVirtqueue extends SplitRingEnd implements RingPosition {
    private final Notifier call;
    private final long usedBytes;
    /** The queue's counters for the device's life (this ring is one of many that may run the queue). */
    private final QueueCounters counters;
    /** Device-readable bytes of each head in flight, set at pop, counted when it is pushed. */
    private final int[] popReadable;

    private int nextAvail;          // free-running u16: next available slot to consume
    private int availIdxSeen;       // last available index read from the ring (u16)
    private int touchedTo;          // touchAhead read the buffers up to here (u16); a hint, never trusted
    private int nextUsed;           // free-running u16: next used slot to fill
    private int publishedUsed;      // used index last published to the ring
    private int signalledUsed;      // used index at the last notify decision (vhost's signalled_used)
    private boolean signalledUsedValid;

    // In-flight tracking (heads popped, not yet pushed): needed to refuse a head offered twice and to save.
    // The count is not kept: it is (nextAvail - nextUsed) & 0xffff (a pop moves nextAvail, a push nextUsed,
    // an unpop moves nextAvail back; restored heads are counted in both from the start).
    private final boolean[] inFlight;     // not IN_ORDER: per head (IN_ORDER: see popPos)
    private final long[] popSequence;
    private long popCounter;

    // VIRTIO_F_IN_ORDER: buffers are used in the order they were popped, so the in-flight heads are the
    // pops at positions [nextUsed, nextAvail) (free-running u16), and a batch of pushes is returned to the
    // driver as one used element (written at the batch's first used slot, id of its last buffer; the
    // driver takes the earlier ones as used with their whole writable length).
    // in order: the pop at position p, at [p & mask]: its head in the low 32 bits, its writable bytes (u32)
    // in the high 32 (see popAt): one word, so a pop stores and a push loads one array element, not two.
    private final long[] popAt;
    // in order: the position (u16) head h was last popped at. h is in flight iff that position lies in
    // [nextUsed, nextAvail) and the pop there was h (an old position can come back into the window after
    // 2^16 pops; popAt's head tells). One store per buffer at pop, none at push: pushes go in position order.
    private final int[] popPos;
    private int batchSlot;              // in order: used slot of the pending element
    private int batchHead;              // in order: its id (the newest push), or -1 if no batch is pending
    private int batchLen;
    private int restoredBase;           // position of resubmit[0] (the used index at restore)
    // In order: the head the next pop will most likely find (see popRing), or -1. A new or restored ring starts with
    // the head a driver numbering its descriptors in table order takes at nextAvail, not -1: the first pop of every
    // session then goes the way every later one goes. Code the JIT compiled while another session ran has never seen
    // the other way, and meeting it there deoptimizes the worker's whole loop, for every queue the worker serves.
    private int headGuess;

    // Used elements pushed since the last publish, written to the ring by publishUsed just before the used index
    // that makes them visible (the driver reads none before it). A used element is 8 bytes of a line the driver's
    // core reads: a store into it waits for that line, and x86 commits stores in order, so one such store per
    // buffer held back every later store of the device's work on that buffer; written together at publication,
    // the waits overlap (bench-switch at 64 B, session 11: +4 %). Up to SHADOW of them; beyond, an element is
    // written at once (still before the index).
    private static final int SHADOW = 256;
    private final int[] shadowSlot;
    private final long[] shadowElem;
    private int shadowCount;

    // Heads restored as in flight, handed out again by pop() before any new buffer (oldest first).
    private static final int[] NO_HEADS = new int[0];
    private int[] resubmit = NO_HEADS;
    private int resubmitPos;

    /**
     * The region the last translated descriptor lay in (one of {@code memory}'s, which is fixed for this ring). Starts
     * as the memory's first region, not null: a null seen once per ring, at its first buffer, is a branch C2 prunes
     * (taken once in millions), so each new ring trapped there and threw away the compiled pop, inlined callers and all,
     * while its session was starting, until the JVM had trapped there often enough to stop pruning it (bench-vhost,
     * session 25: 3 such deoptimizations per run, gone with this).
     */
    private MemoryRegion lastRegion;

    // vhost-user inflight tracking: a record of the heads in flight in memory that outlives the device's process, or null.
    private SplitInflightLog inflightLog;

    // Counters: plain fields, read racily by metrics. buffersPushed counts published pushes (publishUsed adds
    // the batch, (nextUsed - publishedUsed) & 0xffff: one update per batch, not per buffer); the accessor adds
    // the unpublished ones.
    private long buffersPopped, buffersPushed;
    // buffersPopped counts the ring's pops up to position poppedMark; those since (at most a window of the available
    // ring, < 2^16) are added once per window (refreshAvail) rather than one counter update per buffer.
    private int poppedMark;
    // Bytes pushed since the last publish, added to the queue's counters once per batch (publishUsed): the
    // buffers count as returned when the driver can see them.
    private long unpublishedBytes;
    private long notificationsSent, notificationsSuppressed, kickEnables;

    private SplitVirtqueue(SplitRing ring, GuestMemory memory, boolean eventIdx, boolean indirect, boolean inOrder,
                           Notifier call, QueueCounters counters) {
        super(ring, memory, eventIdx, indirect, inOrder);
        this.call = Objects.requireNonNull(call, "call");
        this.counters = Objects.requireNonNull(counters, "counters");
        this.usedBytes = ring.layout.usedRingBytes();
        this.inFlight = inOrder ? null : new boolean[size];
        this.popReadable = new int[size];
        this.popSequence = inOrder ? null : new long[size];
        this.popAt = inOrder ? new long[size] : null;
        this.popPos = inOrder ? new int[size] : null;
        this.batchHead = -1;
        this.headGuess = inOrder ? 0 : -1;   // nextAvail is 0 until a restore sets it (and this with it)
        this.shadowSlot = new int[Math.min(size, SHADOW)];
        this.shadowElem = new long[Math.min(size, SHADOW)];
        List<MemoryRegion> regions = memory.regions();
        this.lastRegion = regions.isEmpty() ? null : regions.getFirst();   // empty only where the ring could not be mapped
    }

    /**
     * A device-side queue on a freshly enabled ring: consumes from available index 0 and resets the
     * device-owned used ring header ({@code flags}, {@code idx}, {@code avail_event}). With {@code inOrder}
     * (negotiated {@code VIRTIO_F_IN_ORDER}) {@link #pushUsed} must return buffers in the order
     * {@link #pop} took them, and {@link #publishUsed} writes one used element per batch.
     *
     * @throws QueueFault BAD_QUEUE_SIZE or BAD_RING_ADDRESS (areas outside memory or misaligned)
     */
    public static SplitVirtqueue create(int queue, int size, long descAddr, long availAddr, long usedAddr,
                                        GuestMemory memory, boolean eventIdx, boolean indirectDesc, boolean inOrder,
                                        Notifier call) throws QueueFault {
        return create(queue, size, descAddr, availAddr, usedAddr, memory, eventIdx, indirectDesc, inOrder, call, new QueueCounters());
    }

    /**
     * As {@link #create(int, int, long, long, long, GuestMemory, boolean, boolean, boolean, Notifier) create}, counting
     * into the queue's {@code counters} (the device's, kept across rings) and attaching this ring to them.
     */
    public static SplitVirtqueue create(int queue, int size, long descAddr, long availAddr, long usedAddr,
                                        GuestMemory memory, boolean eventIdx, boolean indirectDesc, boolean inOrder,
                                        Notifier call, QueueCounters counters) throws QueueFault {
        SplitRing ring;
        try {
            ring = SplitRing.map(queue, size, descAddr, availAddr, usedAddr, memory);
        } catch (QueueFault f) {
            counters.fault(f.reason());
            throw f;
        }
        ring.resetUsedHeader();
        SplitVirtqueue q = new SplitVirtqueue(ring, memory, eventIdx, indirectDesc, inOrder, call, counters);
        counters.attach(q);
        return q;
    }

    /** {@link #create(int, int, long, long, long, GuestMemory, boolean, boolean, boolean, Notifier) create} without IN_ORDER. */
    public static SplitVirtqueue create(int queue, int size, long descAddr, long availAddr, long usedAddr,
                                        GuestMemory memory, boolean eventIdx, boolean indirectDesc, Notifier call)
            throws QueueFault {
        return create(queue, size, descAddr, availAddr, usedAddr, memory, eventIdx, indirectDesc, false, call);
    }

    /**
     * Rebuilds a queue from saved state over the same shared memory and continues where it stopped.
     * Checks the state against the ring in memory (never trusts it blindly): the areas, the published
     * used index, the available index distance, the in-flight heads. In-flight heads are handed out
     * again by {@link #pop} (oldest first) before new buffers, their chains re-read and re-validated.
     * If the driver has buffers outstanding it might be waiting for an interrupt lost in the move, so
     * the driver is signalled once; the worker must also try {@link #pop} before its first wait, since
     * a kick may have been lost the same way.
     *
     * @param indirectDesc negotiated {@code VIRTIO_F_INDIRECT_DESC} (a device feature, kept with the device state)
     * @throws QueueFault STATE_MISMATCH, BAD_QUEUE_SIZE, BAD_RING_ADDRESS or QUEUE_NOT_READY
     */
    public static SplitVirtqueue restore(QueueState state, GuestMemory memory, boolean indirectDesc, Notifier call)
            throws QueueFault {
        return restore(state, memory, indirectDesc, false, call);
    }

    /**
     * As {@link #restore(QueueState, GuestMemory, boolean, Notifier)}, with {@code inOrder} = negotiated
     * {@code VIRTIO_F_IN_ORDER} (a device feature, kept with the device state like INDIRECT_DESC). The
     * in-flight heads are then the pops at positions [nextUsed, nextAvail), oldest first, as saved.
     */
    public static SplitVirtqueue restore(QueueState state, GuestMemory memory, boolean indirectDesc, boolean inOrder,
                                         Notifier call) throws QueueFault {
        return restore(state, memory, indirectDesc, inOrder, call, new QueueCounters());
    }

    /** As {@link #restore(QueueState, GuestMemory, boolean, boolean, Notifier)}, counting into the queue's {@code counters}. */
    public static SplitVirtqueue restore(QueueState state, GuestMemory memory, boolean indirectDesc, boolean inOrder,
                                         Notifier call, QueueCounters counters) throws QueueFault {
        SplitVirtqueue q;
        try {
            q = restoreChecked(state, memory, indirectDesc, inOrder, call, counters);
        } catch (QueueFault f) {
            counters.fault(f.reason());
            throw f;
        }
        counters.attach(q);   // only a ring that passed every check stands as the queue's
        return q;
    }

    private static SplitVirtqueue restoreChecked(QueueState state, GuestMemory memory, boolean indirectDesc, boolean inOrder,
                                                 Notifier call, QueueCounters counters) throws QueueFault {
        if (state.kind() != RingKind.SPLIT)
            throw new IllegalArgumentException("queue " + state.index() + " was saved as " + state.kind() + ", not SPLIT");
        int q = state.index();
        if (!state.ready()) throw new QueueFault(q, Reason.QUEUE_NOT_READY, "saved queue was not enabled");
        SplitRing ring = SplitRing.map(q, state.size(), state.descAddr(), state.availAddr(), state.usedAddr(), memory);
        int size = ring.size;
        int nextAvail = state.nextAvail(), nextUsed = state.nextUsed();
        if ((nextAvail & ~0xffff) != 0 || (nextUsed & ~0xffff) != 0)
            throw new QueueFault(q, Reason.STATE_MISMATCH, "indices must be u16: avail " + nextAvail + ", used " + nextUsed);
        int usedInRing = ring.usedIdxAcquire();
        if (usedInRing != nextUsed)
            throw new QueueFault(q, Reason.STATE_MISMATCH, "used idx in ring is " + usedInRing + ", state says " + nextUsed);
        int availInRing = ring.availIdxAcquire();
        if (((availInRing - nextAvail) & 0xffff) > size)
            throw new QueueFault(q, Reason.STATE_MISMATCH, "avail idx in ring is " + availInRing + ", state says next " + nextAvail);
        List<Integer> heads = state.inFlight();
        int outstanding = (nextAvail - nextUsed) & 0xffff;
        if (heads.size() != outstanding)
            throw new QueueFault(q, Reason.STATE_MISMATCH, heads.size() + " heads in flight, indices say " + outstanding);
        SplitVirtqueue vq = new SplitVirtqueue(ring, memory, state.eventIdx(), indirectDesc, inOrder, call, counters);
        vq.restoredBase = nextUsed;
        vq.resubmit = new int[heads.size()];
        boolean[] listed = new boolean[size];
        for (int i = 0; i < heads.size(); i++) {
            int h = heads.get(i);
            if (h < 0 || h >= size) throw new QueueFault(q, Reason.STATE_MISMATCH, "in-flight head " + h + " >= size " + size);
            if (listed[h]) throw new QueueFault(q, Reason.STATE_MISMATCH, "in-flight head " + h + " listed twice");
            listed[h] = true;
            vq.resubmit[i] = h;
            if (inOrder) {
                int pos = (nextUsed + i) & 0xffff;
                vq.popAt[pos & (size - 1)] = popWord(h, 0);   // writable bytes: set when pop hands it out again
                vq.popPos[h] = pos;
            } else {
                vq.inFlight[h] = true;
                vq.popSequence[h] = vq.popCounter++;
            }
        }
        vq.nextAvail = nextAvail;
        if (inOrder) vq.headGuess = nextAvail & vq.mask;
        vq.poppedMark = nextAvail;
        vq.availIdxSeen = nextAvail;
        vq.nextUsed = nextUsed;
        vq.publishedUsed = nextUsed;
        vq.signalledUsed = nextUsed;
        vq.signalledUsedValid = false;       // the first publish after a restore always signals
        if (((availInRing - nextUsed) & 0xffff) != 0) vq.signal();
        return vq;
    }

    /**
     * The state of a quiesced queue (no worker running it, everything pushed has been published).
     * In-flight heads are listed oldest first.
     *
     * @throws IllegalStateException if used elements were pushed but not yet published
     */
    public QueueState save() {
        if (publishedUsed != nextUsed)
            throw new IllegalStateException("queue " + queue + ": publishUsed() before save (pushed, not published)");
        int inFlightCount = inFlightCount();
        Integer[] heads = new Integer[inFlightCount];
        if (inOrder) {                        // popped in position order, pushed in the same order
            for (int k = 0; k < inFlightCount; k++) heads[k] = headAt(nextUsed + k);
        } else {
            int n = 0;
            for (int h = 0; h < size; h++) if (inFlight[h]) heads[n++] = h;
            Arrays.sort(heads, (a, b) -> Long.compare(popSequence[a], popSequence[b]));
        }
        return new QueueState(queue, RingKind.SPLIT, size, true, ring.descAddr, ring.availAddr, ring.usedAddr,
                nextAvail, nextUsed, eventIdx, new ArrayList<>(Arrays.asList(heads)));
    }

    /**
     * From now on, records every head this ring takes and returns in {@code log} (vhost-user inflight
     * tracking), so that a device process started again after a crash knows which buffers it held. Call
     * before the worker starts, with the log {@link SplitInflightLog#recover} returned for this ring: the
     * heads restored as in flight are in it already.
     */
    public void trackInflight(SplitInflightLog log) {
        if (log.size() != size) throw new IllegalArgumentException("inflight log for " + log.size() + " entries, ring has " + size);
        inflightLog = log;
    }

    /** A chain object sized for this queue, to reuse across {@link #pop} calls. */
    public DescriptorChain newChain() {
        DescriptorChain chain = new DescriptorChain(size);
        // As headGuess: a chain that starts in the region its buffers will most likely lie in takes no new-region
        // branch at the session's first pop, which code compiled while another session ran has never taken.
        if (lastRegion != null) chain.startIn(lastRegion);
        return chain;
    }

    /**
     * Takes the next available buffer into {@code chain}. Returns false if the driver has made none
     * available. Allocates nothing.
     *
     * @throws QueueFault the driver broke a ring rule (the queue is now stopped), or the queue was already stopped
     */
    public boolean pop(DescriptorChain chain) throws QueueFault {
        // Hot path kept small enough to inline into the worker's loop; rare cases go to popSlow.
        if (fault != null || resubmit.length != 0 || chain.capacity() < size) return popSlow(chain);
        if (nextAvail == availIdxSeen && !refreshAvail()) return false;
        return popRing(chain);
    }

    private boolean popSlow(DescriptorChain chain) throws QueueFault {
        if (fault != null) throw fault;
        if (chain.capacity() < size) throw new IllegalArgumentException("chain capacity " + chain.capacity() + " < queue size " + size);
        if (resubmitPos < resubmit.length) {
            readChain(resubmit[resubmitPos], chain);
            popReadable[chain.head()] = (int) chain.readableBytes();
            if (inOrder) popAt[(restoredBase + resubmitPos) & mask] = popWord(chain.head(), chain.writableBytes());
            if (inflightLog != null) inflightLog.popped(chain.head());   // a fresh counter, still oldest first
            resubmitPos++;
            return true;
        }
        if (nextAvail == availIdxSeen && !refreshAvail()) return false;
        resubmit = NO_HEADS;                  // every restored head went out again: pops now come from the ring only
        resubmitPos = 0;
        return popRing(chain);
    }

    /** Reads the available index (acquire: ring entries and descriptors are read after it); true if it moved. */
    private boolean refreshAvail() throws QueueFault {
        int idx = ring.availIdxAcquire();
        if (((idx - nextAvail) & 0xffff) > size)
            throw stop(Reason.AVAIL_INDEX_JUMP, "avail idx " + idx + ", next to consume " + nextAvail + ", size " + size);
        countPops();
        availIdxSeen = idx;
        return idx != nextAvail;
    }

    /** Takes the buffer at {@code nextAvail}, which the available index has published. */
    private boolean popRing(DescriptorChain chain) throws QueueFault {
        int head = ring.availEntry(nextAvail & mask);
        // IN_ORDER: the driver uses descriptors in table order, wrapping at its end (virtio 1.2, split virtqueues, "The
        // Virtqueue Descriptor Table", added so that a device could skip reading the available ring; we still read and
        // check every entry), so the head is almost always the descriptor after the last single-descriptor chain.
        // Taking the head from that guess once the entry has confirmed it lets the CPU read the head's descriptor
        // and in-flight state while the entry's own load is still on its way (the branch is predicted; a value taken
        // from the load would make every later load wait for it): the same head, validated the same way, only sooner.
        int guess = headGuess;
        if (head == guess) return popHead(guess, chain);
        return popHead(head, chain);
    }

    /** Takes {@code head}, the entry at {@code nextAvail}: the one place an available head is checked. */
    private boolean popHead(int head, DescriptorChain chain) throws QueueFault {
        if (head >= size || (inOrder ? inFlightInOrder(head) : inFlight[head])) throw badHead(head);
        if (readSingle(head, chain)) headGuess = inOrder ? (head + 1) & mask : -1;
        else {
            readChain(head, chain);
            headGuess = -1;                   // chains are rare with IN_ORDER: the next pop takes the entry's head
        }
        popReadable[head] = (int) chain.readableBytes();
        if (inOrder) {
            popAt[nextAvail & mask] = popWord(head, chain.writableBytes());
            popPos[head] = nextAvail;
        } else {
            popSequence[head] = popCounter++;
            inFlight[head] = true;
        }
        nextAvail = (nextAvail + 1) & 0xffff;
        if (inflightLog != null) inflightLog.popped(head);
        return true;
    }

    /**
     * Reads ahead, without taking them, up to {@code max} buffers the driver made available: each one's descriptor
     * and the first and last byte of the 64 bytes after its first {@code skip} (a frame's first line, after a header
     * the caller will not read). Those are lines the driver wrote on its own core; taken one buffer at a time, each
     * {@link #pop} and the frame's first read wait for their misses one after another, while read here in one short
     * loop the misses are in flight together. Buffers an earlier call read and not yet popped are not read again
     * ({@link #readAheadUsedUp}). A hint only: it checks nothing, changes nothing the ring's state depends on and
     * throws nothing for anything the driver wrote (an index past the ring, a head out of range, a chain, an indirect
     * table, an address outside the last buffer's region: each is skipped, and {@link #pop} reads and checks every
     * buffer as always). Returns the bytes read folded into one value, for the caller to keep (a read whose value is
     * never used is dead code to the JIT).
     */
    public long touchAhead(int max, int skip) {
        if (fault != null || resubmit.length != 0) return 0;
        int n = (ring.availIdxAcquire() - nextAvail) & 0xffff;
        if (n > size) return 0;          // pop will stop the queue on it
        n = Math.min(n, max);
        int done = readAheadLeft();
        if (done > n) done = 0;
        touchedTo = (nextAvail + n) & 0xffff;
        MemoryRegion r = lastRegion;
        long folded = 0;
        int guess = headGuess < 0 ? -1 : (headGuess + done) & mask;   // IN_ORDER: heads in table order (see popRing)
        for (int k = done, p = nextAvail + done; k < n; k++, p++) {
            int entry = ring.availEntry(p & mask), head;
            // The guess, once the entry confirms it, so that the descriptor's and the frame's loads need not wait
            // for the entry's (see popRing). Not IN_ORDER: guess stays -1, which no entry (u16) is.
            if (entry == guess) head = guess;
            else head = entry;
            if (inOrder) guess = (head + 1) & mask;
            if (head >= size) continue;
            long word = ring.descWord(head);
            folded += word;
            long whole = word & 0xffff_ffffL;
            if (r == null || ((word >>> 32) & (DESC_F_NEXT | DESC_F_INDIRECT)) != 0 || whole <= skip) continue;
            long len = Math.min(whole - skip, 64), addr = ring.descAddr(head) + skip;
            if (!r.contains(addr, len)) continue;
            // r.contains checked the range: read at the host address, unchecked, where FFM never closes the memory
            MemorySegment seg = HostMemory.view(r.segment());
            long off = HostMemory.offsetInView(r.segment(), addr - r.guestAddress());
            folded += HostMemory.getByte(seg, ValueLayout.JAVA_BYTE, off) + HostMemory.getByte(seg, ValueLayout.JAVA_BYTE, off + len - 1);
        }
        return folded;
    }

    /**
     * The host address of descriptor {@code head}'s table entry, for evicting its line once the buffer is taken
     * ({@link dev.jvbus.core.memory.CacheLines}: the driver rewrites it when it makes the entry available again), or
     * -1 unless the table lies in memory that is never unmapped while this queue's worker runs, where a native
     * instruction may touch it ({@link HostMemory#isDirect}). Not the indirect tables: the driver's own allocation.
     */
    public long descriptorHostAddress(int head) {
        return ring.descHostAddress(head);
    }

    /** True when every buffer the last {@link #touchAhead} read has been popped (or none was): time to read the next ones. */
    public boolean readAheadUsedUp() {
        return readAheadLeft() == 0;
    }

    /** Buffers the last {@link #touchAhead} read and not popped yet; 0 if its mark is behind us (popped since, or a reset moved nextAvail). */
    private int readAheadLeft() {
        int ahead = (touchedTo - nextAvail) & 0xffff;
        return ahead > size ? 0 : ahead;
    }

    /**
     * Gives back the most recent {@link #pop} that was not pushed: the buffer becomes available again
     * and the next pop returns it (its descriptors re-read and re-validated). Pops are undone newest
     * first. For a device that takes buffers for one unit of work and finds it cannot finish it (a
     * virtio-net receive that runs out of merge buffers halfway: QEMU's {@code virtqueue_unpop},
     * vhost's {@code vhost_discard_vq_desc}). Ignored once the queue is stopped.
     *
     * @throws IllegalArgumentException if {@code head} is not in flight (a device bug, not a guest error)
     */
    public void unpop(int head) {
        if (fault != null) return;
        if (!isInFlight(head))
            throw new IllegalArgumentException("queue " + queue + ": head " + head + " is not in flight");
        if (resubmit.length != 0) {           // restored heads go out before ring pops, so the newest pop is one of them
            if (resubmitPos == 0 || resubmit[resubmitPos - 1] != head)
                throw new IllegalArgumentException("queue " + queue + ": head " + head + " is not the newest pop");
            resubmitPos--;                    // still in flight since before the save: handed out again by pop
            return;
        }
        countPops();
        nextAvail = (nextAvail - 1) & 0xffff;   // the newest ring pop came from the slot just before
        poppedMark = nextAvail;
        headGuess = -1;
        buffersPopped--;
        if (inflightLog != null) inflightLog.unpopped(head);
        if (!inOrder) inFlight[head] = false;   // IN_ORDER: its position left the window [nextUsed, nextAvail)
    }

    /** True if {@code head} was popped and not pushed (any int: a device's argument, not yet checked). */
    private boolean isInFlight(int head) {
        return head >= 0 && head < size && (inOrder ? inFlightInOrder(head) : inFlight[head]);
    }

    /** IN_ORDER: {@code head} (< size) is in flight iff its last pop position is in the window and that pop was it. */
    private boolean inFlightInOrder(int head) {
        int p = popPos[head];
        return ((p - nextUsed) & 0xffff) < ((nextAvail - nextUsed) & 0xffff) && headAt(p) == head;
    }

    /** IN_ORDER: the {@link #popAt} word of a pop of {@code head} (0..size-1) that may write {@code writable} bytes (u32). */
    private static long popWord(int head, long writable) {
        return (writable << 32) | head;
    }

    /** IN_ORDER: the head popped at position {@code p}. */
    private int headAt(int p) {
        return (int) popAt[p & mask];
    }

    private QueueFault badHead(int head) {
        if (head >= size) return stop(Reason.DESC_INDEX_OUT_OF_RANGE, "head " + head + " at avail slot " + (nextAvail & mask));
        return stop(Reason.BAD_DESCRIPTOR, "head " + head + " made available while still in flight");
    }

    /**
     * The common chain, one descriptor with neither NEXT nor INDIRECT, read and checked exactly as the
     * first step of {@link #readChain} would; false (nothing read into {@code chain}) for any other chain.
     */
    private boolean readSingle(int head, DescriptorChain chain) throws QueueFault {
        long word = ring.descWord(head);   // len, flags, next in one load; head < size (popRing checked)
        int flags = (int) (word >>> 32) & 0xffff;
        if ((flags & (DESC_F_NEXT | DESC_F_INDIRECT)) != 0) return false;
        long addr = ring.descAddr(head);
        int len = (int) word;
        chain.single(head, addr, len, (flags & DESC_F_WRITE) != 0, translate(head, addr, len & 0xffff_ffffL));
        return true;
    }

    /** Walks and validates the chain at {@code head}: the one place descriptors are read (see also {@link #readSingle}). */
    private void readChain(int head, DescriptorChain chain) throws QueueFault {
        MemorySegment table = ring.desc;
        chain.reset(head);
        long tableBase = 0;
        int tableEntries = size;
        boolean inIndirect = false;
        boolean seenWritable = false;
        long total = 0;
        int visited = 0;
        int i = head;
        for (;;) {
            if (++visited > tableEntries)
                throw stop(Reason.CHAIN_LOOP,
                        "head " + head + ": more than " + tableEntries + " descriptors" + (inIndirect ? " in indirect table" : ""));
            long off = tableBase + descOffset(i);
            long addr = table.get(SplitRing.U64_UNALIGNED, off + DESC_ADDR);
            long word = table.get(SplitRing.U64_UNALIGNED, off + DESC_LEN);    // len, flags, next: read once
            int len = (int) word;
            int flags = (int) (word >>> 32) & 0xffff;
            int next = (int) (word >>> 48);
            long ulen = len & 0xffff_ffffL;
            if ((flags & DESC_F_INDIRECT) != 0) {
                if (inIndirect) throw stop(Reason.NESTED_INDIRECT, "head " + head + ", entry " + i);
                if (!indirect) throw stop(Reason.INDIRECT_NOT_NEGOTIATED, "head " + head + ", descriptor " + i);
                if ((flags & DESC_F_NEXT) != 0)
                    throw stop(Reason.BAD_DESCRIPTOR, "head " + head + ": descriptor " + i + " has both INDIRECT and NEXT");
                if (ulen == 0 || (ulen & (DESC_SIZE - 1)) != 0)
                    throw stop(Reason.INDIRECT_BAD_LENGTH, "head " + head + ": indirect table of " + ulen + " bytes");
                long entries = ulen / DESC_SIZE;
                if (entries > size - chain.count())
                    throw stop(Reason.CHAIN_TOO_LONG, "head " + head + ": indirect table of " + entries
                            + " entries after " + chain.count() + " descriptors, queue size " + size);
                MemoryRegion r = translate(head, addr, ulen);
                table = r.segment();
                tableBase = addr - r.guestAddress();
                tableEntries = (int) entries;
                inIndirect = true;
                visited = 0;
                i = 0;
                continue;
            }
            boolean writable = (flags & DESC_F_WRITE) != 0;
            if (!writable && seenWritable)
                throw stop(Reason.READABLE_AFTER_WRITABLE, "head " + head + ": descriptor " + i);
            seenWritable |= writable;
            total += ulen;
            if (total > 0xffff_ffffL) throw stop(Reason.LENGTH_OVERFLOW, "head " + head + ": total length " + total);
            if (chain.count() == chain.capacity())   // unreachable given the bounds above; kept as a guard
                throw stop(Reason.CHAIN_TOO_LONG, "head " + head);
            chain.add(addr, len, writable, translate(head, addr, ulen));
            if ((flags & DESC_F_NEXT) == 0) {
                chain.finish();
                return;
            }
            if (next >= tableEntries)
                throw stop(Reason.DESC_INDEX_OUT_OF_RANGE, "head " + head + ": next " + next + " >= " + tableEntries
                        + (inIndirect ? " (indirect table)" : ""));
            i = next;
        }
    }

    /**
     * The one check of a descriptor's address and length: the range must lie in one region. Consecutive
     * buffers almost always lie in the region of the last one, so that region is asked first (one
     * {@link MemoryRegion#contains}, the same check the table's search makes), then the table.
     */
    private MemoryRegion translate(int head, long addr, long len) throws QueueFault {
        MemoryRegion r = lastRegion;
        if (r != null && r.contains(addr, len)) return r;
        try {
            r = memory.region(addr, len);
        } catch (GuestMemoryException e) {
            throw stop(Reason.BUFFER_OUT_OF_RANGE, "head " + head + ": " + e.getMessage());
        }
        lastRegion = r;   // a reference store (GC barrier) only when the region changes
        return r;
    }

    /**
     * Returns buffer {@code head} to the driver with {@code len} bytes written (u32). The element is
     * written now but becomes visible only at the next {@link #publishUsed()}, so a batch of pushes costs
     * one release store and one notify decision. Ignored once the queue is stopped.
     *
     * @throws IllegalArgumentException if {@code head} is not in flight (a device bug, not a guest error)
     */
    public void pushUsed(int head, int len) {
        if (fault != null) return;
        if (inOrder) {
            // The oldest buffer in flight is the only one that may come back, so one compare is the in-flight
            // check (and no per-head flag needs clearing). It is the range check too: popAt holds only heads a
            // pop or a restore checked to be < size.
            int p = nextUsed & mask;
            long popped = popAt[p];
            if (nextUsed == nextAvail || (int) popped != head) throw badPush(head);
            if (batchHead < 0) batchSlot = p;
            batchHead = head;
            batchLen = len;
            // The driver takes an implicitly used buffer's length as its whole writable length, so a buffer
            // with any other length must end the batch: its element is written now.
            if (len != (int) (popped >>> 32)) writeBatch();
        } else {
            if (head < 0 || head >= size || !inFlight[head]) throw badPush(head);
            usedElem(nextUsed & mask, head, len);
            inFlight[head] = false;
        }
        nextUsed = (nextUsed + 1) & 0xffff;
        if (inflightLog != null) inflightLog.pushed(head);
        unpublishedBytes += (popReadable[head] & 0xffff_ffffL) + (len & 0xffff_ffffL);
    }

    private IllegalArgumentException badPush(int head) {
        if (!isInFlight(head))
            return new IllegalArgumentException("queue " + queue + ": head " + head + " is not in flight");
        return new IllegalArgumentException("queue " + queue + ": IN_ORDER: head " + head
                + " pushed before the older head " + headAt(nextUsed));
    }

    /**
     * Publishes the used elements pushed since the last call (release store of the used index), then
     * decides, after a full fence, whether the driver wants an interrupt: with EVENT_IDX, if
     * {@code used_event} was passed since the last decision ({@link SplitRingLayout#needEvent}); without,
     * unless the driver set {@code VIRTQ_AVAIL_F_NO_INTERRUPT}. Signals at most once.
     *
     * @return true if the driver was signalled
     */
    public boolean publishUsed() {
        if (fault != null || nextUsed == publishedUsed) return false;
        if (batchHead >= 0) writeBatch();
        for (int k = 0, n = shadowCount; k < n; k++) ring.usedElem(shadowSlot[k], shadowElem[k]);
        shadowCount = 0;
        ring.usedIdxRelease(nextUsed);
        if (inflightLog != null) inflightLog.published(nextUsed);   // after the used index, as the spec orders it
        memory.markDirty(ring.usedAddr, usedBytes);   // migration: the used ring is device-written memory
        int pushed = (nextUsed - publishedUsed) & 0xffff;   // at most size (< 2^16) since the last publish
        publishedUsed = nextUsed;
        buffersPushed += pushed;
        counters.completed(pushed, unpublishedBytes);
        unpublishedBytes = 0;
        VarHandle.fullFence();   // the used idx store must be visible before we read the driver's suppression
        boolean need;
        if (eventIdx) {
            int event = ring.usedEventAcquire();
            need = !signalledUsedValid || needEvent(event, nextUsed, signalledUsed);
            signalledUsed = nextUsed;
            signalledUsedValid = true;
        } else {
            need = (ring.availFlagsAcquire() & AVAIL_F_NO_INTERRUPT) == 0;
        }
        if (need) signal();
        else {
            notificationsSuppressed++;
            counters.suppressed();
        }
        return need;
    }

    /** IN_ORDER: writes the pending batch's one used element (id of its newest buffer) at its first slot. */
    private void writeBatch() {
        usedElem(batchSlot, batchHead, batchLen);
        batchHead = -1;
    }

    /** A used element for slot {@code slot}: held until {@link #publishUsed()} writes the index, or written now if the shadow is full. */
    private void usedElem(int slot, int id, int len) {
        int k = shadowCount;
        if (k == shadowSlot.length) {
            ring.usedElem(slot, id, len);
            return;
        }
        shadowSlot[k] = slot;
        shadowElem[k] = SplitRing.usedElemWord(id, len);
        shadowCount = k + 1;
    }

    private void signal() {
        notificationsSent++;
        counters.notified();
        call.signal();
    }

    /**
     * Asks the driver to kick when it adds buffers (before the worker sleeps): with EVENT_IDX writes
     * {@code avail_event} = next index to consume, else clears {@code VIRTQ_USED_F_NO_NOTIFY}; then, after
     * a full fence, re-reads the available index.
     *
     * @return true if buffers are (or may be) available already, so the worker must not sleep: a kick
     *         for them may have been suppressed before kicks were enabled
     */
    public boolean enableKicks() {
        if (fault != null) return false;
        kickEnables++;
        if (eventIdx) ring.availEventRelease(nextAvail);
        else ring.usedFlagsRelease(0);
        memory.markDirty(ring.usedAddr, usedBytes);
        VarHandle.fullFence();   // our enable must be visible before we look again at the avail idx
        return resubmitPos < resubmit.length || nextAvail != availIdxSeen || ring.availIdxAcquire() != nextAvail;
    }

    /**
     * Tells the driver that kicks are not needed while the worker is busy. Without EVENT_IDX sets
     * {@code VIRTQ_USED_F_NO_NOTIFY}; with EVENT_IDX there is nothing to write (the driver kicks only when
     * it passes the {@code avail_event} published by the last {@link #enableKicks()}).
     */
    public void disableKicks() {
        if (fault != null) return;
        if (!eventIdx) {
            ring.usedFlagsRelease(USED_F_NO_NOTIFY);
            memory.markDirty(ring.usedAddr, usedBytes);
        }
    }

    /** True if {@link #pop} would find a buffer (or a fault); one acquire load when the cached index is used up. */
    public boolean hasAvailable() {
        if (fault != null) return true;
        if (resubmitPos < resubmit.length || nextAvail != availIdxSeen) return true;
        return ring.availIdxAcquire() != nextAvail;
    }

    public boolean eventIdx() { return eventIdx; }

    public boolean indirectDesc() { return indirect; }

    public int nextAvail() { return nextAvail; }

    public int nextUsed() { return nextUsed; }

    public int inFlightCount() { return (nextAvail - nextUsed) & 0xffff; }

    @Override
    public int inFlight() { return inFlightCount(); }

    /** Buffers the driver made available that were not taken yet: one acquire load of its index (racy from another thread). */
    @Override
    public int available() {
        if (fault != null) return 0;
        int n = (ring.availIdxAcquire() - nextAvail) & 0xffff;
        return Math.min(n, size);   // a driver's wild index says nothing about fill
    }

    /** The counters this ring bumps (the queue's, for the device's life). */
    public QueueCounters counters() { return counters; }

    @Override
    void faulted(Reason reason) {
        counters.fault(reason);
    }

    public long buffersPopped() { return buffersPopped + ((nextAvail - poppedMark) & 0xffff); }

    /** Adds the ring's pops since {@link #poppedMark} to {@link #buffersPopped}. */
    private void countPops() {
        buffersPopped += (nextAvail - poppedMark) & 0xffff;
        poppedMark = nextAvail;
    }

    /** Buffers pushed, unpublished ones included (exact from the worker's thread; from another, off by up to a batch). */
    public long buffersPushed() { return buffersPushed + ((nextUsed - publishedUsed) & 0xffff); }

    /** Interrupts delivered to the driver. */
    public long notificationsSent() { return notificationsSent; }

    /** Publishes that needed no interrupt (suppressed by used_event or NO_INTERRUPT). */
    public long notificationsSuppressed() { return notificationsSuppressed; }

    /** Times the worker enabled kicks (about to sleep). */
    public long kickEnables() { return kickEnables; }

    @Override
    public String toString() {
        return "SplitVirtqueue[queue=" + queue + ", size=" + size + ", nextAvail=" + nextAvail + ", nextUsed=" + nextUsed
                + ", inFlight=" + inFlightCount() + (fault != null ? ", STOPPED: " + fault.getMessage() : "") + "]";
    }
}
