package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.net.NetPort;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * The rx side's record of what it delivered, kept in the driver's own memory so that it outlives the bus: with it
 * a frame a sender replays after a bus restart is delivered exactly once. One log per device, for all its rx
 * queues: with multiqueue a sender's frames go to several of them (by flow), and a replay may be routed to
 * another rx queue than the first time (the pairs in use are set again after a restart), so what a sender
 * had delivered is one fact for the device, not one per ring.
 *
 * <p>Why it is needed. A sender's tx worker copies a frame into this device's rx ring and publishes our used
 * index, and only later (at the end of its batch) publishes its own tx used index. A bus killed in between leaves
 * the sender's buffer available-but-not-used: on resume its ring starts again from its used index and sends the
 * frame again, although our driver has it. Publishing the tx side first would lose the frame instead. The two
 * publishes are stores into two clients' memories, so no order makes them one step; the receiver therefore
 * decides, from its own memory, whether it already has a replayed frame.
 *
 * <p>Layout: {@link #SLOTS} slots of 16 bytes, one per sending queue: {@code u64 key} (0: free; the source MAC,
 * and in its top 16 bits the sender's transmit queue, {@link NetPort#originQueue}, whose positions are its own), then
 * {@code u64 word = ring << 48 | previous << 32 | position << 16 | usedAfter}, all u16: the rx queue (pair) that
 * took the last frame from that sender, the sender's transmit position of that frame, the position of the one
 * before it that was delivered, and that rx ring's used index once the frame is published. The word is written
 * <em>before</em> the ring's used index is published (release), so at resume that ring's used index in memory says
 * which of the two positions is delivered: {@code position} if it reached {@code usedAfter}, else {@code previous}.
 * Every logged frame is published at once (one at a time for the device, under the port's delivery lock), so
 * {@code previous} is always published, whichever ring it went to, and a sender's frames are taken in its transmit
 * order: every position up to the delivered one was delivered or dropped. A replayed frame (the sender marks
 * them, {@link NetPort#REPLAY}) at or up to {@link #REPLAY_SPAN} behind that position is skipped; every other
 * frame is new.
 *
 * <p>Threads: written only under the port's delivery lock (one delivery at a time), set up by the control plane
 * before the gate opens. Per frame: one compare per slot, one store; no allocation, no lock, no syscall.
 *
 * <p>Limits: more sending queues than slots evict the oldest slot (its replays are then delivered again); a ring
 * that does not run when the device resumes cannot say whether the last frame it took was published: that one
 * frame counts as not delivered (at most one duplicate per sending queue, never a loss); positions are u16: a sender
 * that set its ring up afresh and then, in its first ring's worth of frames, replays one whose position happens to
 * lie just behind the last position we had from its old ring loses that frame; a sender sharing its MAC with
 * another defeats the log.
 */
final class DeliveryLog {
    static final int SLOTS = 16;
    static final int SLOT_BYTES = 16;
    /** Bytes the driver reserves for the log (8-byte aligned). */
    static final int BYTES = SLOTS * SLOT_BYTES;
    /**
     * How far behind a sender's last delivered position a replay may be and still count as delivered: its tx ring's
     * size at most (a replay lies between its tx used index and what was available, and so does the last frame
     * delivered from it). A position further back is a new frame of a ring the sender set up afresh since.
     */
    static final int REPLAY_SPAN = VirtioNetModel.QUEUE_MAX;
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment memory;
    private final long[] keys = new long[SLOTS];
    private final int[] delivered = new int[SLOTS];   // u16: the sender's position of the last frame we delivered
    private final int[] rings = new int[SLOTS];       // the rx ring (pair) the slot's last frame went to
    private int victim;
    private int pendingSlot = -1, pendingPosition;

    private DeliveryLog(MemorySegment memory) {
        this.memory = memory;
    }

    /** The log at {@code address} of the driver's memory: checked here, the one place its address is taken. */
    static DeliveryLog at(GuestMemory m, long address) throws GuestMemoryException {
        if ((address & 7) != 0) throw new GuestMemoryException(address, BYTES, "the delivery log must be 8-byte aligned");
        MemorySegment s = m.slice(address, BYTES);
        if ((s.address() & 7) != 0) throw new GuestMemoryException(address, BYTES, "the delivery log must be 8-byte aligned");
        return new DeliveryLog(s);
    }

    /** A new driver: nothing delivered yet. */
    void clear() {
        memory.fill((byte) 0);
        java.util.Arrays.fill(keys, 0);
        victim = 0;
    }

    /**
     * The device resumed after a bus restart, {@code usedIdx[ring]} the used index of each rx ring as the driver's
     * memory has it ({@link #NOT_RUNNING} for a ring that does not run): each sender's delivered position, from the
     * slot's word and whether its last frame was published on its ring. The words are the driver's bytes: any value
     * only decides which of that driver's own frames it gets again.
     */
    void resume(int[] usedIdx) {
        for (int i = 0; i < SLOTS; i++) {
            long key = (long) LONG.getAcquire(memory, (long) i * SLOT_BYTES);
            long word = (long) LONG.getAcquire(memory, (long) i * SLOT_BYTES + 8);
            int ring = (int) (word >>> 48) & 0xffff;
            int previous = (int) (word >>> 32) & 0xffff, position = (int) (word >>> 16) & 0xffff, usedAfter = (int) word & 0xffff;
            int used = ring < usedIdx.length ? usedIdx[ring] : NOT_RUNNING;
            keys[i] = key;
            rings[i] = ring;
            delivered[i] = used != NOT_RUNNING && (short) (used - usedAfter) >= 0 ? position : previous;
        }
        victim = 0;
    }

    /** {@link #resume}: a ring that does not run now. */
    static final int NOT_RUNNING = -1;

    /** Whether a frame from {@code mac} with {@code origin} is a replay of one already delivered. */
    boolean alreadyDelivered(long mac, int origin) {
        if ((origin & NetPort.REPLAY) == 0 || origin == NetPort.NO_ORIGIN) return false;
        int s = slot(key(mac, origin));
        return s >= 0 && ((delivered[s] - origin) & 0xffff) < REPLAY_SPAN;
    }

    /** Before rx ring {@code ring}'s used index {@code usedAfter} is published for a frame from {@code mac} at {@code origin}. */
    void beforePublish(long mac, int origin, int ring, int usedAfter) {
        if (origin == NetPort.NO_ORIGIN || mac == 0) {
            pendingSlot = -1;
            return;
        }
        int position = origin & 0xffff;
        long key = key(mac, origin);
        int s = slot(key);
        long base;
        if (s < 0) {
            s = victim;
            victim = (victim + 1) % SLOTS;
            base = (long) s * SLOT_BYTES;
            // Freed first, claimed last: a kill in between leaves a free slot, never one sender's word under another's key.
            LONG.setRelease(memory, base, 0L);
            keys[s] = key;
            rings[s] = ring;
            delivered[s] = (position - 1) & 0xffff;
            LONG.setRelease(memory, base + 8, word(ring, delivered[s], position, usedAfter));
            LONG.setRelease(memory, base, key);
        } else {
            base = (long) s * SLOT_BYTES;
            rings[s] = ring;
            LONG.setRelease(memory, base + 8, word(ring, delivered[s], position, usedAfter));
        }
        pendingSlot = s;
        pendingPosition = position;
    }

    /**
     * Rx ring {@code ring} was set up afresh within the run (a queue reset): its used index starts over, so it no
     * longer says anything about the frames logged on it, all of them published when it stopped. Their slots now say
     * so themselves (both positions the delivered one), whatever that ring's used index reads at a later resume.
     */
    void ringStartedAfresh(int ring) {
        for (int s = 0; s < SLOTS; s++)
            if (keys[s] != 0 && rings[s] == ring)
                LONG.setRelease(memory, (long) s * SLOT_BYTES + 8, word(ring, delivered[s], delivered[s], 0));
    }

    /** The ring's used index was published: the frame {@link #beforePublish} named is delivered. */
    void published() {
        if (pendingSlot >= 0) delivered[pendingSlot] = pendingPosition;
        pendingSlot = -1;
    }

    private static long word(int ring, int previous, int position, int usedAfter) {
        return (long) (ring & 0xffff) << 48 | (long) (previous & 0xffff) << 32 | (long) (position & 0xffff) << 16 | (usedAfter & 0xffff);
    }

    /** The slot key of a sending queue: its MAC (48 bits, never 0), its transmit queue above. */
    private static long key(long mac, int origin) {
        return mac == 0 ? 0 : (mac & 0xffff_ffff_ffffL) | (long) NetPort.originQueue(origin) << 48;
    }

    private int slot(long key) {
        if (key == 0) return -1;
        for (int i = 0; i < SLOTS; i++) if (keys[i] == key) return i;
        return -1;
    }
}
