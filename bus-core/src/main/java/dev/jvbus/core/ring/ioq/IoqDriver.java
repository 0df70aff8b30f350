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
import static dev.jvbus.core.ring.ioq.IoqLayout.IDX_VALID;
import static dev.jvbus.core.ring.ioq.IoqLayout.NORTH;
import static dev.jvbus.core.ring.ioq.IoqLayout.SOUTH;
import static dev.jvbus.core.ring.ioq.IoqLayout.U32;
import static dev.jvbus.core.ring.ioq.IoqLayout.U64;
import static dev.jvbus.core.ring.ioq.IoqLayout.U8;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import java.lang.foreign.MemorySegment;

/**
 * The driver (north, memory-owner) side of a vbus IOQ ring, as vbus-enet's transmit path uses
 * it: {@link #offer} fills the descriptor at the tail (cookie, ptr, len, valid), advances the tail
 * of both indices ("ioq_idxtype_both"), then sets {@code sown} to hand it to the device;
 * {@link #kick()} injects the shm-signal. {@link #reap} walks the "valid" index from its head and
 * collects descriptors the device handed back ({@code valid && !sown}), clearing {@code valid}.
 *
 * <p>What the device controls is checked: inuse.head (range, never more completions than were
 * outstanding, never a descriptor handed back without the index passing it), the completed
 * length (no more than the buffer held), and that a free descriptor stays north-owned.
 * No allocation per buffer; one thread drives a driver object.
 */
public final class IoqDriver {
    /** Receives one completed buffer. */
    @FunctionalInterface
    public interface CompletionSink {
        void completed(long cookie, long length);
    }

    private final int queue;
    private final int count;
    private final MemorySegment ring;
    private final ShmSignal signal;
    private final long[] offeredLength;   // per descriptor, to check the completed length

    private int tail;          // next descriptor to fill (valid.tail == inuse.tail)
    private int validHead;     // next descriptor to reap
    private int validHeadPublished;   // valid.head as last stored in the ring
    private int outstanding;   // offered (published), not reaped
    private int staged;        // filled by offerLater, not yet published (they follow the outstanding ones)
    private int completedSeen; // completions the device index already vouched for, not yet reaped
    private QueueFault fault;

    /** Buffers offered. */
    public long buffers;
    /** Buffers reaped. */
    public long completions;

    private IoqDriver(int queue, int count, MemorySegment ring, Notifier notifier, boolean suppress) {
        this.queue = queue;
        this.count = count;
        this.ring = ring;
        this.signal = new ShmSignal(ring, NORTH, notifier, suppress);
        this.offeredLength = new long[count];
    }

    /**
     * Lays out a fresh ring of {@code count} descriptors at {@code headAddr} (the north side owns
     * and initialises the memory, as vbus_driver_ioq_alloc does). {@code notifier} kicks the device.
     */
    public static IoqDriver create(int queue, GuestMemory memory, long headAddr, int count,
                                   Notifier notifier, boolean suppress) throws QueueFault {
        MemorySegment ring = IoqRingArea.map(queue, memory, headAddr, count);
        ring.fill((byte) 0);   // all indices 0, every descriptor north-owned and not valid
        U32.set(ring, (long) IoqLayout.VERSION_OFFSET, IoqLayout.RING_VERSION);
        U32.set(ring, (long) IoqLayout.SIGNAL_OFFSET + IoqLayout.SIGNAL_MAGIC_OFFSET, IoqLayout.SIGNAL_MAGIC);
        U32.set(ring, (long) IoqLayout.SIGNAL_OFFSET + IoqLayout.SIGNAL_VERSION_OFFSET, IoqLayout.SIGNAL_VERSION);
        U32.set(ring, (long) IoqLayout.COUNT_OFFSET, count);
        U32.setRelease(ring, (long) IoqLayout.MAGIC_OFFSET, IoqLayout.RING_MAGIC);   // magic last: the head is complete
        return new IoqDriver(queue, count, ring, notifier, suppress);
    }

    /** Descriptor index the next {@link #offer} fills (to pick a per-slot buffer). */
    public int nextSlot() { return tail; }

    /** Room for another {@link #offer}. */
    public boolean hasRoom() { return outstanding + staged < count; }

    /** Hands one buffer to the device; false if the ring is full. Does not signal: see {@link #kick()}. */
    public boolean offer(long cookie, long ptr, long length) throws QueueFault {
        if (!offerLater(cookie, ptr, length)) return false;
        publishOffers();
        return true;
    }

    /**
     * Fills the next descriptor like {@link #offer} but hands it to the device only at the next
     * {@link #publishOffers()} or {@link #kick()}: a batch then costs one store of each tail (the ring
     * head's cache line, which the device reads, is written once per batch, not per buffer).
     * False if the ring is full (counting staged descriptors).
     */
    public boolean offerLater(long cookie, long ptr, long length) throws QueueFault {
        if (fault != null) throw fault;
        if (outstanding + staged == count) return false;
        int t = tail;
        long d = IoqLayout.descOffset(t);
        byte sown = (byte) U8.getAcquire(ring, d + DESC_SOWN);
        if (sown != NORTH)
            throw fail(Reason.BAD_DESCRIPTOR, "free descriptor " + t + " is not north-owned (sown=" + sown + ")");
        U64.set(ring, d + DESC_COOKIE, cookie);
        U64.set(ring, d + DESC_PTR, ptr);
        U64.set(ring, d + DESC_LEN, length);
        U8.set(ring, d + DESC_VALID, (byte) 1);
        offeredLength[t] = length;
        tail = t + 1 == count ? 0 : t + 1;
        staged++;
        buffers++;
        return true;
    }

    /**
     * Hands the staged descriptors to the device, oldest first: idx_tail_push on both indices (the full
     * flags first, then the tails, with release), then each {@code sown} flips to the south, so the
     * device never finds a descriptor it owns that the index has not published. No-op if none is staged.
     */
    public void publishOffers() {
        int n = staged;
        if (n == 0 || fault != null) return;
        int end = tail;
        // Either index can only become full with this push if every descriptor is then outstanding
        // (end == validHead): the device has completed no more than we reaped. Only then read inuse.head,
        // a word the device writes on every completion batch.
        if (end == validHead) {
            U8.set(ring, IoqLayout.idxOffset(IDX_VALID, IDX_FULL), (byte) 1);
            if (end == (int) U32.getAcquire(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_HEAD)))
                U8.setRelease(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_FULL), (byte) 1);
        }
        U32.setRelease(ring, IoqLayout.idxOffset(IDX_VALID, IDX_TAIL), end);
        U32.setRelease(ring, IoqLayout.idxOffset(IDX_INUSE, IDX_TAIL), end);
        int i = end - n;
        if (i < 0) i += count;
        for (int k = 0; k < n; k++, i = i + 1 == count ? 0 : i + 1)
            U8.setRelease(ring, IoqLayout.descOffset(i) + DESC_SOWN, (byte) SOUTH);   // the index is visible before the owner flips
        outstanding += n;
        staged = 0;
    }

    /** Descriptors filled by {@link #offerLater} and not yet handed to the device. */
    public int staged() { return staged; }

    /** Hands over staged offers ({@link #publishOffers()}), then tells the device (shm_signal_inject on the south irq). */
    public void kick() throws QueueFault {
        if (fault != null) throw fault;
        publishOffers();
        signal.inject();
    }

    /** Collects up to {@code max} completed buffers, oldest first; returns how many. */
    public int reap(CompletionSink sink, int max) throws QueueFault {
        if (fault != null) throw fault;
        try {
            return reapLoop(sink, max);
        } finally {
            // valid.head once per reap, not per buffer: it shares the ring head's cache line with the
            // device's inuse.head, so every store there pulls the line away from the device.
            if (validHead != validHeadPublished) {
                U32.setRelease(ring, IoqLayout.idxOffset(IDX_VALID, IDX_HEAD), validHead);
                validHeadPublished = validHead;
            }
        }
    }

    private int reapLoop(CompletionSink sink, int max) throws QueueFault {
        int n = 0;
        while (n < max && outstanding > 0) {
            int h = validHead;
            long d = IoqLayout.descOffset(h);
            byte sown = (byte) U8.getAcquire(ring, d + DESC_SOWN);
            if (sown == SOUTH) break;
            if (sown != NORTH) throw fail(Reason.BAD_DESCRIPTOR, "descriptor " + h + " has sown byte " + sown);
            if (completedSeen == 0) refreshCompleted(h);
            long len = (long) U64.get(ring, d + DESC_LEN);
            if (len < 0 || len > offeredLength[h])
                throw fail(Reason.LENGTH_OVERFLOW, "device completed descriptor " + h + " with " + Long.toUnsignedString(len)
                        + " bytes, the buffer holds " + offeredLength[h]);
            long cookie = (long) U64.get(ring, d + DESC_COOKIE);
            U8.set(ring, d + DESC_VALID, (byte) 0);
            long full = IoqLayout.idxOffset(IDX_VALID, IDX_FULL);
            if ((byte) U8.get(ring, full) != 0) U8.setRelease(ring, full, (byte) 0);   // before the sink may offer again
            validHead = h + 1 == count ? 0 : h + 1;
            outstanding--;
            completedSeen--;
            completions++;
            n++;
            sink.completed(cookie, len);
        }
        return n;
    }

    /** The device handed back descriptor h: its inuse.head must have passed h, and not run past the tail. */
    private void refreshCompleted(int h) throws QueueFault {
        int dh;
        try {
            dh = IoqRingArea.index(queue, ring, IDX_INUSE, IDX_HEAD, count);
        } catch (QueueFault f) {
            fault = f;
            throw f;
        }
        int done = dh - h;
        if (done < 0) done += count;
        if (done == 0 && outstanding == count) done = count;
        if (done > outstanding)
            throw fail(Reason.USED_INDEX_JUMP, "inuse.head " + dh + " claims " + done + " completions, " + outstanding + " outstanding");
        if (done == 0)
            throw fail(Reason.BAD_DESCRIPTOR, "device handed back descriptor " + h + " without advancing inuse.head past it");
        completedSeen = done;
    }

    /** This side's shm-signal: enable/disable, the receive pass, counters. */
    public ShmSignal signal() { return signal; }

    public int outstanding() { return outstanding; }

    public int size() { return count; }

    /** The fault that stopped this queue, or null. */
    public QueueFault fault() { return fault; }

    private QueueFault fail(Reason reason, String detail) {
        fault = new QueueFault(queue, reason, detail);
        return fault;
    }
}
