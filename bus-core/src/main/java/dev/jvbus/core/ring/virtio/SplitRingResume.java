package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a split ring that was already in use carries on, read from the ring itself: a vhost-user
 * front-end hands over a ring with only the next available index it wants consumed (SET_VRING_BASE),
 * not the device's full state. Next used is the used index in memory; the buffers between it and the
 * base were taken but not returned, and for a device that returns buffers in the order it took them
 * (a net device does) they are the available entries from the used index on, oldest first.
 *
 * <p>The result goes to {@link SplitVirtqueue#restore}, which checks it again against the ring; here
 * the ring areas are checked (size, alignment, inside memory) before anything is read, and a base
 * more than a ring's worth ahead of the used index is refused.
 */
public final class SplitRingResume {
    private SplitRingResume() { }

    /**
     * The state of ring {@code queue} placed at {@code descAddr}/{@code availAddr}/{@code usedAddr}
     * in {@code memory}, to consume next from {@code base} (a free-running u16).
     *
     * @throws QueueFault BAD_QUEUE_SIZE or BAD_RING_ADDRESS (areas outside memory or misaligned),
     *                    STATE_MISMATCH (base not a u16, or ahead of the used index by more than the size)
     */
    public static QueueState fromBase(int queue, int size, long descAddr, long availAddr, long usedAddr, GuestMemory memory,
                                      int base, boolean eventIdx) throws QueueFault {
        SplitRing ring = SplitRing.map(queue, size, descAddr, availAddr, usedAddr, memory);
        if ((base & ~0xffff) != 0) throw new QueueFault(queue, Reason.STATE_MISMATCH, "base " + base + " is not a u16");
        int usedIdx = ring.usedIdxAcquire();
        int outstanding = (base - usedIdx) & 0xffff;
        if (outstanding > size)
            throw new QueueFault(queue, Reason.STATE_MISMATCH, "base " + base + " is " + outstanding
                    + " ahead of the used index " + usedIdx + " (ring size " + size + ")");
        List<Integer> inFlight = new ArrayList<>(outstanding);
        for (int i = 0; i < outstanding; i++) inFlight.add(ring.availEntry((usedIdx + i) & ring.mask));
        return new QueueState(queue, RingKind.SPLIT, size, true, descAddr, availAddr, usedAddr, base, usedIdx, eventIdx, inFlight);
    }

    /**
     * The state of a ring whose device is gone (a bus restarted under its driver), to carry on from the used
     * index in memory: what was taken and not returned is taken again, as if never taken. Checked like
     * {@link #fromBase}.
     */
    public static QueueState fromUsed(int queue, int size, long descAddr, long availAddr, long usedAddr, GuestMemory memory,
                                      boolean eventIdx) throws QueueFault {
        SplitRing ring = SplitRing.map(queue, size, descAddr, availAddr, usedAddr, memory);
        return fromBase(queue, size, descAddr, availAddr, usedAddr, memory, ring.usedIdxAcquire(), eventIdx);
    }

    /** Where a ring carries on, and the inflight log its ring goes on writing. */
    public record Resumed(QueueState state, SplitInflightLog log, boolean fromInflight) { }

    /**
     * As {@link #fromBase}, for a ring whose heads in flight a previous device process recorded in
     * {@code inflight} (vhost-user INFLIGHT_SHMFD; {@link SplitInflightLog}): the record, not the base,
     * says where the ring is. Next used is the used index in memory; the heads the record has in flight
     * are handed out again, oldest (lowest counter) first, before any new buffer; next available is the
     * used index plus their count (the heads a device taking buffers in order took from the ring; what
     * libvhost-user does). A front-end's base cannot know that after a crash: QEMU sends the used index
     * (what it last saw returned), DPDK's virtio-user 0. A record never used is initialised, and the
     * base says where the ring is, as without one. {@link SplitVirtqueue#restore} checks the result
     * again against the ring (the heads must be distinct and below the size, next available no further
     * than the driver's available index).
     *
     * @throws QueueFault as {@link #fromBase}, or STATE_MISMATCH naming what the record got wrong
     */
    public static Resumed fromInflight(int queue, int size, long descAddr, long availAddr, long usedAddr, GuestMemory memory,
                                       int base, boolean eventIdx, MemorySegment inflight) throws QueueFault {
        SplitRing ring = SplitRing.map(queue, size, descAddr, availAddr, usedAddr, memory);
        int usedIdx = ring.usedIdxAcquire();
        SplitInflightLog.Recovery r = SplitInflightLog.recover(queue, inflight, size, usedIdx);
        if (r.fresh()) return new Resumed(fromBase(queue, size, descAddr, availAddr, usedAddr, memory, base, eventIdx), r.log(), false);
        List<Integer> heads = new ArrayList<>();
        for (int h : r.inFlight()) heads.add(h);
        int nextAvail = (usedIdx + heads.size()) & 0xffff;
        return new Resumed(new QueueState(queue, RingKind.SPLIT, size, true, descAddr, availAddr, usedAddr, nextAvail, usedIdx, eventIdx, heads),
                r.log(), true);
    }
}
