package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.Objects;

/**
 * The driver side of a split virtqueue, for the Java client library, tests and benchmarks. One thread
 * owns an instance. It offers buffer chains ({@link #add}, {@link #addIndirect}), kicks the device when
 * the device asked for it ({@link #kickIfNeeded}), collects used buffers ({@link #pollUsed}) and
 * suppresses or enables interrupts. Descriptor bookkeeping (free list, chain lengths, in-flight heads)
 * lives in private arrays, never read back from shared memory, and the device's used elements are
 * validated (index jump, unknown id, a length beyond the bytes the buffer let the device write) since
 * the device is not trusted either.
 *
 * <p>Ordering mirrors the device: descriptors and the ring entry are written plainly and published by a
 * release store of the available index; a full fence separates that store (or enabling interrupts) from
 * reading {@code avail_event}/flags (or re-reading the used index); the used index is read with acquire
 * before its elements.
 */
public final class SplitVirtqueueDriver extends SplitRingEnd {
    private final Notifier kick;

    private final int[] next;        // free list links, and the links inside a chain we built
    private final int[] chainTail;   // last descriptor of the chain headed here
    /**
     * What the driver knows of the chain headed here, packed in one word so that an add stores it once and
     * a collect loads it once (four parallel arrays cost an array load, a length load and a range check
     * each, per buffer, on both paths): bit 63 in flight, bits 48-62 descriptors it holds in the table
     * minus one (1..32768), bits 32-47 the avail position (u16) it was added at (IN_ORDER), bits 0-31 its
     * device-writable bytes (u32, saturated): the most a used length may say. See {@link #headWord}.
     */
    private final long[] headState;
    private static final long IN_FLIGHT = 1L << 63;
    private int freeHead;            // next descriptor to use (IN_ORDER: the table is used round-robin, no list)
    private int freeCount;

    // VIRTIO_F_IN_ORDER: buffers come back in the order they were added; one used element may stand for
    // a batch (id = its newest buffer, at the batch's first used slot).
    private final int[] headAt;      // head added at avail position p, at [p & mask]
    private int batchEnd = -1;       // avail position of the current batch's newest buffer, or -1
    private int batchLen;

    private int availIdx;            // free-running u16: next avail slot to fill (published, or staged by addLater)
    private int availPublished;      // avail idx as last stored in the ring
    private int kickCheckedAvail;    // avail idx at the last kick decision
    private int lastUsed;            // next used slot to collect
    private int usedIdxSeen;

    // Counters: plain fields, read racily by metrics. buffersAdded counts published adds (publishAvail adds
    // the batch: one update per batch, not per buffer); the accessor adds the staged ones.
    private long buffersAdded, buffersCollected;
    private long kicksSent, kicksSuppressed, interruptEnables;

    private SplitVirtqueueDriver(SplitRing ring, GuestMemory memory, boolean eventIdx, boolean indirect, boolean inOrder,
                                 Notifier kick) {
        super(ring, memory, eventIdx, indirect, inOrder);
        this.kick = Objects.requireNonNull(kick, "kick");
        this.next = new int[size];
        this.chainTail = new int[size];
        this.headState = new long[size];
        this.headAt = inOrder ? new int[size] : null;
        for (int i = 0; i < size; i++) next[i] = inOrder ? (i + 1) & mask : i + 1;
        this.freeHead = 0;
        this.freeCount = size;
    }

    /**
     * Sets up a fresh ring as a driver does before enabling the queue: resets the driver-owned
     * available ring header ({@code flags}, {@code idx}, {@code used_event}). With {@code inOrder}
     * (negotiated {@code VIRTIO_F_IN_ORDER}) descriptors are used round-robin (a chain at x links to x+1,
     * the last table entry to 0) and freed in order; the device may return a batch as one used element,
     * checked like any used element.
     */
    public static SplitVirtqueueDriver create(int queue, int size, long descAddr, long availAddr, long usedAddr,
                                              GuestMemory memory, boolean eventIdx, boolean indirectDesc, boolean inOrder,
                                              Notifier kick) throws QueueFault {
        SplitRing ring = SplitRing.map(queue, size, descAddr, availAddr, usedAddr, memory);
        ring.resetAvailHeader();
        return new SplitVirtqueueDriver(ring, memory, eventIdx, indirectDesc, inOrder, kick);
    }

    /** Free descriptors in the table; a direct chain needs one per segment, an indirect chain one. */
    public int freeDescriptors() { return freeCount; }

    /**
     * Offers {@code buffers} as one chain of table descriptors and publishes the available index.
     *
     * @return the head id the device will hand back, or -1 if fewer than {@code buffers.count()}
     *         descriptors are free (collect used buffers first)
     */
    public int add(BufferList buffers) throws QueueFault {
        if (fault != null) throw fault;
        int n = buffers.count;
        if (n == 0) throw new IllegalArgumentException("empty buffer list");
        if (n > freeCount) return -1;
        int head = freeHead;
        if (n == 1) {                          // one segment: one descriptor, no links
            boolean w = buffers.readableCount == 0;
            ring.writeDesc(head, buffers.address[0], buffers.length[0], w ? DESC_F_WRITE : 0, 0);
            take(head, head, 1, w ? Integer.toUnsignedLong(buffers.length[0]) : 0);
            publish(head);
            return head;
        }
        int d = head;
        long wbytes = 0;
        for (int k = 0; k < n; k++) {
            if (k >= buffers.readableCount) wbytes += Integer.toUnsignedLong(buffers.length[k]);
            int flags = (k >= buffers.readableCount ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            int nx = next[d];
            ring.writeDesc(d, buffers.address[k], buffers.length[k], flags, k + 1 < n ? nx : 0);
            if (k + 1 < n) d = nx;
        }
        take(head, d, n, wbytes);
        publish(head);
        return head;
    }

    /**
     * Offers one buffer ({@code length} bytes at guest address {@code addr}, device-writable if
     * {@code writable}) as a one-descriptor chain, without a {@link BufferList}: the same as
     * {@link #add(BufferList)} with one segment.
     *
     * @return the head id, or -1 if no descriptor is free
     */
    public int add(long addr, int length, boolean writable) throws QueueFault {
        int head = addLater(addr, length, writable);
        if (head >= 0) publishAvail();
        return head;
    }

    /**
     * Like {@link #add(long, int, boolean)}, but the buffer becomes visible to the device only at the next
     * {@link #publishAvail()} or {@link #kickIfNeeded()}: a batch of adds then costs one store of the
     * available index, so a device polling that index is not handed its cache line once per buffer.
     * Publish (kickIfNeeded) before waiting for the buffers to come back.
     *
     * @return the head id, or -1 if no descriptor is free
     */
    public int addLater(long addr, int length, boolean writable) throws QueueFault {
        if (fault != null) throw fault;
        if (freeCount == 0) return -1;
        int head = freeHead;
        ring.writeDesc(head, addr, length, writable ? DESC_F_WRITE : 0, 0);
        take(head, head, 1, writable ? Integer.toUnsignedLong(length) : 0);
        stage(head);
        return head;
    }

    /**
     * Offers {@code buffers} through an indirect table the caller placed in guest memory at
     * {@code tableAddr} (room for {@code 16 * buffers.count()} bytes, not touched by anyone until the
     * buffer comes back). Uses one table descriptor.
     *
     * @return the head id, or -1 if no descriptor is free
     */
    public int addIndirect(BufferList buffers, long tableAddr) throws QueueFault {
        if (fault != null) throw fault;
        if (!indirect) throw new IllegalStateException("VIRTIO_F_INDIRECT_DESC was not negotiated on queue " + queue);
        int n = buffers.count;
        if (n == 0) throw new IllegalArgumentException("empty buffer list");
        if (n > size) throw new IllegalArgumentException("indirect chain of " + n + " > queue size " + size);
        if (freeCount == 0) return -1;
        long bytes = (long) n * DESC_SIZE;
        MemoryRegion r;
        try {
            r = memory.region(tableAddr, bytes);
        } catch (GuestMemoryException e) {
            throw new IllegalArgumentException("indirect table outside memory: " + e.getMessage(), e);
        }
        MemorySegment t = r.segment();
        long base = tableAddr - r.guestAddress();
        for (int k = 0; k < n; k++) {
            long off = base + descOffset(k);
            int flags = (k >= buffers.readableCount ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            t.set(SplitRing.U64_UNALIGNED, off + DESC_ADDR, buffers.address[k]);
            t.set(SplitRing.U64_UNALIGNED, off + DESC_LEN, SplitRing.descWord(buffers.length[k], flags, k + 1 < n ? k + 1 : 0));
        }
        int head = freeHead;
        long wbytes = 0;
        for (int k = buffers.readableCount; k < n; k++) wbytes += Integer.toUnsignedLong(buffers.length[k]);
        ring.writeDesc(head, tableAddr, (int) bytes, DESC_F_INDIRECT, 0);
        take(head, head, 1, wbytes);
        publish(head);
        return head;
    }

    private void take(int head, int tail, int n, long writableBytes) {
        freeHead = inOrder ? (tail + 1) & mask : next[tail];   // IN_ORDER: the table is used round-robin (next[] says the same)
        freeCount -= n;
        headState[head] = headWord(n, availIdx, writableBytes);
        if (!inOrder) {
            chainTail[head] = tail;           // to splice the chain back onto the free list
        } else {
            headAt[availIdx & mask] = head;
        }
    }

    /**
     * The {@link #headState} word of a chain of {@code n} (1..size) descriptors added at avail position
     * {@code pos} (u16) that lets the device write {@code writableBytes}: a sum of u32 lengths, saturated at
     * 2^32-1, which any u32 used length the device can say stays within, as the unsaturated sum would.
     */
    private static long headWord(int n, int pos, long writableBytes) {
        return IN_FLIGHT | ((long) (n - 1) << 48) | ((long) (pos & 0xffff) << 32) | Math.min(writableBytes, 0xffff_ffffL);
    }

    private static int chainLength(long state) { return (int) (state >>> 48 & 0x7fff) + 1; }

    private static int addedAt(long state) { return (int) (state >>> 32) & 0xffff; }

    private static long writableBytes(long state) { return state & 0xffff_ffffL; }

    private void publish(int head) {
        stage(head);
        publishAvail();
    }

    private void stage(int head) {
        ring.availEntry(availIdx & mask, head);
        availIdx = (availIdx + 1) & 0xffff;
    }

    /**
     * Makes the buffers staged by {@link #addLater} visible to the device: one release store of the
     * available index (descriptors and ring entries become visible first). {@link #kickIfNeeded} does it
     * too. No-op if nothing is staged.
     */
    public void publishAvail() {
        if (availPublished != availIdx) {
            ring.availIdxRelease(availIdx);
            buffersAdded += (availIdx - availPublished) & 0xffff;   // staged: at most size (< 2^16) since the last publish
            availPublished = availIdx;
        }
    }

    /**
     * Kicks the device if it wants a kick for the buffers added since the last decision: with EVENT_IDX
     * if {@code avail_event} was passed ({@link SplitRingLayout#needEvent}), else unless the device set
     * {@code VIRTQ_USED_F_NO_NOTIFY}. Call once per batch of adds.
     *
     * @return true if the device was kicked
     */
    public boolean kickIfNeeded() {
        if (fault != null || availIdx == kickCheckedAvail) return false;
        publishAvail();
        VarHandle.fullFence();   // the avail idx store must be visible before we read the device's suppression
        boolean need = eventIdx
                ? needEvent(ring.availEventAcquire(), availIdx, kickCheckedAvail)
                : (ring.usedFlagsAcquire() & USED_F_NO_NOTIFY) == 0;
        kickCheckedAvail = availIdx;
        if (need) {
            kicksSent++;
            kick.signal();
        } else {
            kicksSuppressed++;
        }
        return need;
    }

    /**
     * Collects the next used buffer, freeing its descriptors.
     *
     * @return -1 if none, else {@code id << 32 | len} (see {@link #usedId}, {@link #usedLength})
     * @throws QueueFault USED_INDEX_JUMP, BAD_USED_ID or LENGTH_OVERFLOW (a used length beyond the buffer's
     *         writable bytes) if the device broke the ring (the queue stops)
     */
    public long pollUsed() throws QueueFault {
        if (fault != null) throw fault;
        if (lastUsed == usedIdxSeen) {
            int idx = ring.usedIdxAcquire();   // acquire: elements are read after this
            if (((idx - lastUsed) & 0xffff) > size)
                throw stop(Reason.USED_INDEX_JUMP, "used idx " + idx + ", next to collect " + lastUsed);
            usedIdxSeen = idx;
            if (idx == lastUsed) return -1;
        }
        if (inOrder) return pollUsedInOrder();
        int slot = lastUsed & mask;
        long elem = ring.usedElem(slot);   // id and len read once, together
        int id = (int) elem;
        int len = (int) (elem >>> 32);
        long state;
        if (id < 0 || id >= size || (state = headState[id]) >= 0)   // >= 0: IN_FLIGHT (the sign bit) clear
            throw stop(Reason.BAD_USED_ID, "id " + Integer.toUnsignedString(id) + " at used slot " + slot);
        checkUsedLength(id, len, slot, state);
        headState[id] = 0;
        next[chainTail[id]] = freeHead;
        freeHead = id;
        freeCount += chainLength(state);
        lastUsed = (lastUsed + 1) & 0xffff;
        buffersCollected++;
        return ((long) id << 32) | (len & 0xffff_ffffL);
    }

    /**
     * IN_ORDER: the buffer at {@code lastUsed} is used. At a batch start the element at this slot names
     * the batch's newest buffer: it must be in flight and within the published used index.
     */
    private long pollUsedInOrder() throws QueueFault {
        int p = lastUsed;
        if (batchEnd < 0) {
            int slot = p & mask;
            long elem = ring.usedElem(slot);
            int id = (int) elem;
            int len = (int) (elem >>> 32);
            long state;
            if (id < 0 || id >= size || (state = headState[id]) >= 0)
                throw stop(Reason.BAD_USED_ID, "id " + Integer.toUnsignedString(id) + " at used slot " + slot);
            int at = addedAt(state);
            int batch = ((at - p) & 0xffff) + 1;   // id in flight: its position is in [lastUsed, availIdx)
            if (batch > ((usedIdxSeen - p) & 0xffff))
                throw stop(Reason.BAD_USED_ID, "IN_ORDER: id " + id + " at used slot " + slot + " ends a batch of " + batch
                        + " buffers, the used idx published " + ((usedIdxSeen - p) & 0xffff));
            checkUsedLength(id, len, slot, state);
            batchEnd = at;
            batchLen = len;
        }
        int id = headAt[p & mask];
        long state = headState[id];
        long len;
        if (p == batchEnd) {
            len = batchLen & 0xffff_ffffL;
            batchEnd = -1;
        } else {
            len = writableBytes(state);
        }
        headState[id] = 0;
        freeCount += chainLength(state);
        lastUsed = (p + 1) & 0xffff;
        buffersCollected++;
        return ((long) id << 32) | (len & 0xffff_ffffL);
    }

    /**
     * Collects every used buffer the device has published so far, freeing their descriptors, without
     * reporting them one by one: for a driver that needs only the room back (with IN_ORDER its buffers
     * come back in the order it added them, so it knows which they were). Each used element is checked
     * exactly as {@link #pollUsed} checks it; with IN_ORDER a batch the device returned as one element
     * is freed in one pass instead of one call per buffer.
     *
     * @return how many buffers were collected
     * @throws QueueFault as {@link #pollUsed}
     */
    public int collectUsed() throws QueueFault {
        if (!inOrder) {
            int n = 0;
            while (pollUsed() >= 0) n++;
            return n;
        }
        if (fault != null) throw fault;
        int n = 0;
        while (true) {
            if (lastUsed == usedIdxSeen) {
                int idx = ring.usedIdxAcquire();   // acquire: elements are read after this
                if (((idx - lastUsed) & 0xffff) > size)
                    throw stop(Reason.USED_INDEX_JUMP, "used idx " + idx + ", next to collect " + lastUsed);
                usedIdxSeen = idx;
                if (idx == lastUsed) return n;
            }
            pollUsedInOrder();                     // opens a batch if none is (checking its element); frees one buffer
            n++;
            // The rest of the batch, up to its newest buffer: every position is in flight (the element was checked).
            int end = batchEnd;
            if (end < 0) continue;
            int p = lastUsed;
            int k = (end - p) & 0xffff;            // buffers before the batch's last one
            for (int i = 0; i < k; i++, p = (p + 1) & 0xffff) {
                int id = headAt[p & mask];
                long state = headState[id];
                headState[id] = 0;
                freeCount += chainLength(state);
            }
            lastUsed = p;
            buffersCollected += k;
            n += k;
            pollUsedInOrder();                     // the batch's last buffer: its length is the element's
            n++;
        }
    }

    /**
     * The one check of a used element's length (both orders): the device may say it wrote at most the
     * bytes the buffer let it write. A larger length would make the caller read past what the device
     * filled, into memory the buffer does not cover (the IOQ driver checks its completions the same way).
     */
    private void checkUsedLength(int id, int len, int slot, long state) throws QueueFault {
        if (Integer.toUnsignedLong(len) > writableBytes(state))
            throw stop(Reason.LENGTH_OVERFLOW, "id " + id + " at used slot " + slot + " says " + Integer.toUnsignedString(len)
                    + " bytes written, the buffer lets the device write " + writableBytes(state));
    }

    public static int usedId(long element) { return (int) (element >>> 32); }

    public static long usedLength(long element) { return element & 0xffff_ffffL; }

    /**
     * Asks the device to interrupt when it uses more buffers (before this thread sleeps): with EVENT_IDX
     * writes {@code used_event} = next used index to collect, else clears {@code VIRTQ_AVAIL_F_NO_INTERRUPT};
     * then, after a full fence, re-reads the used index.
     *
     * @return true if used buffers are (or may be) pending already, so the caller must not sleep
     */
    public boolean enableInterrupts() {
        if (fault != null) return false;
        interruptEnables++;
        if (eventIdx) ring.usedEventRelease(lastUsed);
        else ring.availFlagsRelease(0);
        VarHandle.fullFence();
        return lastUsed != usedIdxSeen || ring.usedIdxAcquire() != lastUsed;
    }

    /**
     * Like {@link #enableInterrupts()}, but with EVENT_IDX asks to be interrupted only when about three
     * quarters of the outstanding buffers are used (Linux {@code virtqueue_enable_cb_delayed}), so a
     * driver that waits for room in a full ring wakes to a batch, not to every buffer. Without
     * EVENT_IDX this is {@link #enableInterrupts()}.
     *
     * @return true if used buffers are (or may be) pending already, so the caller must not sleep
     */
    public boolean enableInterruptsDelayed() {
        if (!eventIdx || fault != null) return enableInterrupts();
        interruptEnables++;
        int bufs = ((availPublished - lastUsed) & 0xffff) * 3 / 4;   // of what the device can see
        ring.usedEventRelease((lastUsed + bufs) & 0xffff);
        VarHandle.fullFence();
        return lastUsed != usedIdxSeen || ((ring.usedIdxAcquire() - lastUsed) & 0xffff) > bufs;
    }

    /** Interrupts are not needed while this thread is busy collecting (a hint without EVENT_IDX; no-op with it). */
    public void disableInterrupts() {
        if (fault != null) return;
        if (!eventIdx) ring.availFlagsRelease(AVAIL_F_NO_INTERRUPT);
    }

    /** True if {@link #pollUsed} would find an element (or a fault). */
    public boolean hasUsed() {
        if (fault != null) return true;
        return lastUsed != usedIdxSeen || ring.usedIdxAcquire() != lastUsed;
    }

    /** Buffers added and not yet collected. */
    public int outstanding() { return (availIdx - lastUsed) & 0xffff; }

    /** Buffers added, staged ones included (exact from the owning thread; from another, off by up to a batch). */
    public long buffersAdded() { return buffersAdded + ((availIdx - availPublished) & 0xffff); }

    public long buffersCollected() { return buffersCollected; }

    public long kicksSent() { return kicksSent; }

    public long kicksSuppressed() { return kicksSuppressed; }

    public long interruptEnables() { return interruptEnables; }

    @Override
    public String toString() {
        return "SplitVirtqueueDriver[queue=" + queue + ", size=" + size + ", avail=" + availIdx + ", lastUsed=" + lastUsed
                + ", free=" + freeCount + (fault != null ? ", STOPPED: " + fault.getMessage() : "") + "]";
    }
}
