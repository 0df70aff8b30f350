package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.DESC_COOKIE;
import static dev.jvbus.core.ring.ioq.IoqLayout.DESC_LEN;
import static dev.jvbus.core.ring.ioq.IoqLayout.DESC_PTR;
import static dev.jvbus.core.ring.ioq.IoqLayout.DESC_SOWN;
import static dev.jvbus.core.ring.ioq.IoqLayout.DESC_VALID;
import static dev.jvbus.core.ring.ioq.IoqLayout.IDX_FULL;
import static dev.jvbus.core.ring.ioq.IoqLayout.IDX_HEAD;
import static dev.jvbus.core.ring.ioq.IoqLayout.IDX_INUSE;
import static dev.jvbus.core.ring.ioq.IoqLayout.IDX_TAIL;
import static dev.jvbus.core.ring.ioq.IoqLayout.NORTH;
import static dev.jvbus.core.ring.ioq.IoqLayout.SOUTH;
import static dev.jvbus.core.ring.ioq.IoqLayout.U32;
import static dev.jvbus.core.ring.ioq.IoqLayout.U64;
import static dev.jvbus.core.ring.ioq.IoqLayout.U8;

import dev.jvbus.core.memory.GuestMemory;
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
import java.util.ArrayList;
import java.util.List;

/**
 * The device (south) side of a vbus IOQ ring. The driver pushes descriptors on the "inuse" index
 * and hands them over by setting {@code sown}; the device takes them in order ({@link #poll()}),
 * and completes them in the same order ({@link #complete(long)}): it writes the length, advances
 * {@code inuse.head}, and flips {@code sown} back to the north, as {@code ioq_iter_pop} does.
 * {@link #notifyDriver()} then injects the shm-signal (suppressed if the driver has one pending).
 *
 * <p>Everything the driver controls is checked before use: the ring head at attach, the inuse
 * tail (range, and never moving back), ownership bits (a south-owned descriptor the index never
 * published, a descriptor taken back while the device owns it), the buffer's address and length
 * (read once, then checked with {@link GuestMemory}). A violation throws {@link QueueFault} and
 * stops the queue: every later call throws the same fault. No allocation per buffer: {@link #poll()}
 * returns one reused {@link Buffer} flyweight. One thread drives a device object.
 *
 * <p>Saved state, in {@link QueueState} terms: {@code availAddr} = ring head, {@code descAddr} =
 * head + 56 (the embedded descriptor table), {@code usedAddr} = head + 8 (the embedded shm-signal),
 * {@code nextUsed} = inuse.head (next to complete), {@code nextAvail} = next to take,
 * {@code inFlight} = the descriptors taken but not completed, {@code eventIdx} = shm-signal
 * suppression on. A restored device offers the in-flight descriptors again (as vhost-user
 * resubmits inflight I/O), so a device model must complete what it has acted on before saving.
 */
public final class IoqDevice implements RingPosition {
    private final int queue;
    private final GuestMemory memory;
    private final long headAddr;
    private final int count;
    private final MemorySegment ring;
    private final ShmSignal signal;
    private final Buffer buffer = new Buffer();

    private int nextAvail;      // next descriptor to take
    private int nextUsed;       // next descriptor to complete == inuse.head as we last wrote it
    private int inFlight;       // taken, not completed
    private int published;      // descriptors the driver has pushed beyond nextUsed, as last seen
    private int staged;         // completed with completeLater, not yet handed back (they follow nextUsed)
    private long stagedBytes;   // their completion lengths
    private QueueFault fault;
    /**
     * The queue's counters for the device's life (this ring is one of many that may run the queue). Set
     * before the ring is handed to the thread that runs it (a restore sets it last).
     */
    private QueueCounters counters;

    /** Buffers completed. */
    public long buffers;

    private IoqDevice(int queue, GuestMemory memory, long headAddr, int count, MemorySegment ring,
                      Notifier notifier, boolean suppress, int head, QueueCounters counters) {
        this.queue = queue;
        this.counters = counters;
        this.memory = memory;
        this.headAddr = headAddr;
        this.count = count;
        this.ring = ring;
        this.signal = new ShmSignal(ring, SOUTH, notifier, suppress);
        this.nextAvail = head;
        this.nextUsed = head;
        counters.attach(this);
    }

    /**
     * Attaches to a ring the driver set up at {@code headAddr} with {@code count} descriptors
     * (vbus_shm_ioq_attach): checks bounds, alignment, magics, versions and count. {@code notifier}
     * signals the driver (its eventfd); {@code suppress = false} signals on every inject.
     */
    public static IoqDevice attach(int queue, GuestMemory memory, long headAddr, int count,
                                   Notifier notifier, boolean suppress) throws QueueFault {
        return attach(queue, memory, headAddr, count, notifier, suppress, new QueueCounters());
    }

    /** As {@link #attach(int, GuestMemory, long, int, Notifier, boolean)}, counting into the queue's {@code counters}. */
    public static IoqDevice attach(int queue, GuestMemory memory, long headAddr, int count,
                                   Notifier notifier, boolean suppress, QueueCounters counters) throws QueueFault {
        try {
            return attachChecked(queue, memory, headAddr, count, notifier, suppress, counters);
        } catch (QueueFault f) {
            counters.fault(f.reason());
            throw f;
        }
    }

    private static IoqDevice attachChecked(int queue, GuestMemory memory, long headAddr, int count,
                                           Notifier notifier, boolean suppress, QueueCounters counters) throws QueueFault {
        MemorySegment ring = IoqRingArea.map(queue, memory, headAddr, count);
        IoqRingArea.checkHead(queue, ring, count);
        int head = IoqRingArea.index(queue, ring, IDX_INUSE, IDX_HEAD, count);
        IoqRingArea.index(queue, ring, IDX_INUSE, IDX_TAIL, count);
        return new IoqDevice(queue, memory, headAddr, count, ring, notifier, suppress, head, counters);
    }

    /**
     * Rebuilds a device over the same shared memory from a saved state, checking the state
     * against the ring in memory (nothing is written). In-flight descriptors are offered again.
     */
    public static IoqDevice restore(QueueState s, GuestMemory memory, Notifier notifier) throws QueueFault {
        return restore(s, memory, notifier, new QueueCounters());
    }

    /** As {@link #restore(QueueState, GuestMemory, Notifier)}, counting into the queue's {@code counters}. */
    public static IoqDevice restore(QueueState s, GuestMemory memory, Notifier notifier, QueueCounters counters) throws QueueFault {
        // The checks below may refuse the ring (and a refused ring must not stand as the queue's): they run
        // with counters of their own, and the ring that passed takes the queue's.
        IoqDevice d;
        try {
            d = restoreChecked(s, memory, notifier, new QueueCounters());
        } catch (QueueFault f) {
            counters.fault(f.reason());
            throw f;
        }
        d.counters = counters;
        counters.attach(d);
        return d;
    }

    private static IoqDevice restoreChecked(QueueState s, GuestMemory memory, Notifier notifier, QueueCounters counters) throws QueueFault {
        int q = s.index();
        if (s.kind() != RingKind.IOQ) throw mismatch(q, "ring kind " + s.kind());
        if (!s.ready()) throw mismatch(q, "queue was not ready");
        long head = s.availAddr();
        if (s.descAddr() != head + IoqLayout.DESC_TABLE_OFFSET)
            throw mismatch(q, "descAddr 0x" + Long.toHexString(s.descAddr()) + " is not ring head + " + IoqLayout.DESC_TABLE_OFFSET);
        if (s.usedAddr() != 0 && s.usedAddr() != head + IoqLayout.SIGNAL_OFFSET)
            throw mismatch(q, "usedAddr 0x" + Long.toHexString(s.usedAddr()) + " is not the shm-signal at ring head + " + IoqLayout.SIGNAL_OFFSET);
        IoqDevice d = attachChecked(q, memory, head, s.size(), notifier, s.eventIdx(), counters);
        int n = s.size();
        if (s.nextUsed() < 0 || s.nextUsed() >= n || s.nextAvail() < 0 || s.nextAvail() >= n)
            throw mismatch(q, "nextUsed " + s.nextUsed() + " / nextAvail " + s.nextAvail() + " outside 0.." + (n - 1));
        if (d.nextUsed != s.nextUsed())
            throw mismatch(q, "ring inuse.head is " + d.nextUsed + ", state says " + s.nextUsed());
        List<Integer> inflight = s.inFlight();
        if (inflight.size() > n) throw mismatch(q, inflight.size() + " in flight in a ring of " + n);
        int i = s.nextUsed();
        for (int e : inflight) {
            if (e != i) throw mismatch(q, "in-flight list " + inflight + " is not the run from nextUsed " + s.nextUsed());
            if ((byte) U8.getAcquire(d.ring, IoqLayout.descOffset(i) + DESC_SOWN) != SOUTH)
                throw mismatch(q, "in-flight descriptor " + i + " is not owned by the device");
            i = i + 1 == n ? 0 : i + 1;
        }
        if (i != s.nextAvail()) throw mismatch(q, "nextAvail " + s.nextAvail() + " does not follow the in-flight run");
        try {
            d.refreshPublished();
        } catch (QueueFault f) {
            throw mismatch(q, f.getMessage());
        }
        if (d.published < inflight.size())
            throw mismatch(q, inflight.size() + " in flight but the driver published only " + d.published);
        return d;   // nextAvail stays at nextUsed: in-flight descriptors are offered again
    }

    private static QueueFault mismatch(int queue, String detail) {
        return new QueueFault(queue, Reason.STATE_MISMATCH, detail);
    }

    /**
     * Takes the next descriptor the driver handed over, or returns null if there is none.
     * The returned flyweight is reused by the next call.
     */
    public Buffer poll() throws QueueFault {
        if (fault != null) throw fault;
        if (inFlight == count) return null;
        int i = nextAvail;
        long d = IoqLayout.descOffset(i);
        byte sown = (byte) U8.getAcquire(ring, d + DESC_SOWN);
        if (sown == NORTH) return null;
        if (sown != SOUTH) throw fail(Reason.BAD_DESCRIPTOR, "descriptor " + i + " has sown byte " + sown);
        if (inFlight >= published) {
            refreshPublished();
            if (inFlight >= published)
                throw fail(Reason.BAD_DESCRIPTOR, "descriptor " + i + " is south-owned but the inuse index never published it");
        }
        byte valid = (byte) U8.get(ring, d + DESC_VALID);
        if (valid != 1) throw fail(Reason.BAD_DESCRIPTOR, "descriptor " + i + " handed over without a buffer (valid=" + valid + ")");
        // Read the peer's values once; only these copies are checked and used.
        long ptr = (long) U64.get(ring, d + DESC_PTR);
        long len = (long) U64.get(ring, d + DESC_LEN);
        if (len < 0 || (Long.compareUnsigned(ptr + len, ptr) < 0 && ptr + len != 0))
            throw fail(Reason.LENGTH_OVERFLOW, "descriptor " + i + ": ptr 0x" + Long.toHexString(ptr) + " len 0x" + Long.toHexString(len));
        MemoryRegion r;
        try {
            r = memory.region(ptr, len);
        } catch (GuestMemoryException e) {
            throw fail(Reason.BUFFER_OUT_OF_RANGE, "descriptor " + i + ": " + e.getMessage());
        }
        buffer.index = i;
        buffer.cookie = (long) U64.get(ring, d + DESC_COOKIE);
        buffer.address = ptr;
        buffer.length = len;
        buffer.region = r;
        buffer.offset = ptr - r.guestAddress();
        nextAvail = i + 1 == count ? 0 : i + 1;
        inFlight++;
        return buffer;
    }

    /** Re-reads the driver's inuse tail; it may only move forward within the ring. */
    private void refreshPublished() throws QueueFault {
        int tail;
        try {
            tail = IoqRingArea.index(queue, ring, IDX_INUSE, IDX_TAIL, count);
        } catch (QueueFault f) {
            throw stop(f);
        }
        int head = (int) U32.getAcquire(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_HEAD));
        if (head != nextUsed)
            throw fail(Reason.INDEX_TAMPERED, "inuse.head is " + Integer.toUnsignedString(head) + ", the device left it at " + nextUsed);
        int n = tail - nextUsed;
        if (n < 0) n += count;
        if (n == 0 && (byte) U8.getAcquire(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_FULL)) != 0) n = count;
        if (n < published)
            throw fail(Reason.AVAIL_INDEX_JUMP, "inuse.tail " + tail + " leaves " + n + " published, the device saw " + published
                    + " (moved back, or forward by more than the free slots)");
        published = n;
    }

    /**
     * Completes the oldest in-flight descriptor with {@code length} bytes (what the device wrote,
     * or 0), and hands it back to the driver. Signal with {@link #notifyDriver()} after a batch.
     */
    public void complete(long length) throws QueueFault {
        completeLater(length);
        publishCompleted();
    }

    /**
     * Completes the oldest in-flight descriptor not yet completed with {@code length} bytes, but hands it
     * back only at the next {@link #publishCompleted()} (or {@link #complete}), so a batch costs one
     * {@code inuse.head} store: the ring head's cache line is written once per batch, not per buffer.
     */
    public void completeLater(long length) throws QueueFault {
        if (fault != null) throw fault;
        if (inFlight == staged) throw new IllegalStateException("queue " + queue + ": nothing in flight to complete");
        if (length < 0) throw new IllegalArgumentException("negative length " + length);
        int i = nextUsed + staged;
        if (i >= count) i -= count;
        long d = IoqLayout.descOffset(i);
        byte sown = (byte) U8.getAcquire(ring, d + DESC_SOWN);
        if (sown != SOUTH)
            throw fail(Reason.BAD_DESCRIPTOR, "driver took back descriptor " + i + " while the device owned it (sown=" + sown + ")");
        U64.set(ring, d + DESC_LEN, length);
        staged++;
        stagedBytes += length;
    }

    /**
     * Hands back the descriptors completed with {@link #completeLater}, oldest first: one release store
     * of {@code inuse.head} past all of them, then the full flag, then each {@code sown} flips to the
     * north (head before full, full before sown, as {@code ioq_iter_pop}, so the driver never sees a
     * descriptor back before the index passed it). Signal with {@link #notifyDriver()} after it.
     */
    public void publishCompleted() {
        int n = staged;
        if (n == 0 || fault != null) return;
        int first = nextUsed;
        int end = first + n;
        if (end >= count) end -= count;
        U32.setRelease(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_HEAD), end);
        long full = IoqLayout.idxOffset(IDX_INUSE, IDX_FULL);
        if ((byte) U8.getAcquire(ring, full) != 0) U8.setRelease(ring, full, (byte) 0);
        for (int k = 0, i = first; k < n; k++, i = i + 1 == count ? 0 : i + 1)
            U8.setRelease(ring, IoqLayout.descOffset(i) + DESC_SOWN, (byte) NORTH);
        nextUsed = end;
        staged = 0;
        inFlight -= n;
        published -= n;
        buffers += n;
        counters.completed(n, stagedBytes);
        stagedBytes = 0;
    }

    /** Descriptors completed with {@link #completeLater} and not yet handed back. */
    public int staged() { return staged; }

    /** Tells the driver that descriptors came back (shm_signal_inject on the north irq). */
    public void notifyDriver() throws QueueFault {
        if (fault != null) throw fault;
        long sent = signal.signalsSent;
        signal.inject();
        if (signal.signalsSent != sent) counters.notified();
        else counters.suppressed();
    }

    /** This side's shm-signal: enable/disable, the receive pass, counters. */
    public ShmSignal signal() { return signal; }

    @Override
    public int inFlight() { return inFlight; }

    @Override
    public int nextAvail() { return nextAvail; }

    @Override
    public int nextUsed() { return nextUsed; }

    /** Descriptors the driver handed over that the device has not taken, as last seen (no read of the ring). */
    @Override
    public int available() { return Math.max(0, published - inFlight); }

    /** The counters this ring bumps (the queue's, for the device's life). */
    public QueueCounters counters() { return counters; }

    @Override
    public int size() { return count; }

    public int queue() { return queue; }

    /** The fault that stopped this queue, or null. */
    public QueueFault fault() { return fault; }

    /** Saved state; the caller guarantees the queue is quiesced (no thread is driving it). */
    public QueueState save() {
        if (fault != null) throw new IllegalStateException("queue " + queue + " stopped: " + fault.getMessage());
        if (staged != 0) throw new IllegalStateException("queue " + queue + ": publishCompleted() before save (" + staged + " staged)");
        List<Integer> inflight = new ArrayList<>(inFlight);
        for (int k = 0, i = nextUsed; k < inFlight; k++, i = i + 1 == count ? 0 : i + 1) inflight.add(i);
        return new QueueState(queue, RingKind.IOQ, count, true, headAddr + IoqLayout.DESC_TABLE_OFFSET, headAddr,
                headAddr + IoqLayout.SIGNAL_OFFSET, nextAvail, nextUsed, signal.suppressing(), inflight);
    }

    private QueueFault fail(Reason reason, String detail) {
        return stop(new QueueFault(queue, reason, detail));
    }

    private QueueFault stop(QueueFault f) {
        if (fault == null) counters.fault(f.reason());
        fault = f;
        return f;
    }

    /** One taken descriptor, valid until the next {@link #poll()}. Reused: do not keep it. */
    public static final class Buffer {
        int index;
        long cookie;
        long address;
        long length;
        MemoryRegion region;
        long offset;

        Buffer() {}

        /** Descriptor index in the ring. */
        public int index() { return index; }
        /** The driver's cookie (opaque to the device). */
        public long cookie() { return cookie; }
        /** Guest address of the buffer (checked). */
        public long address() { return address; }
        /** Buffer length in bytes (checked: the whole range lies in one region). */
        public long length() { return length; }
        /** The guest memory segment holding the buffer. */
        public MemorySegment segment() { return region.segment(); }
        /** Offset of the buffer within {@link #segment()}. */
        public long offset() { return offset; }
    }
}
