package dev.jvbus.net;

/**
 * The receiving ports one sender has delivered frames to since its last {@link #flush()}: their backends
 * may hold those frames unpublished ({@link NetPort#flush()}), so the receiver's ring sees one used-index
 * store and one notify decision per batch instead of one per frame (what DPDK's vhost does per burst).
 *
 * <p>Owned by one sending thread (a device's tx worker: one batch per tx queue), never shared; several
 * threads may send through the same {@link SwitchPort}, each with its own batch. The sender must call
 * {@link #flush()} at the end of every batch, also when the batch ends early (a fault, a reset): frames
 * not flushed stay invisible to their receivers until someone else's flush (and the receiving port's delivery
 * lock, which the batch keeps between frames of a run to one port, stays taken). Nothing allocated per frame.
 */
public final class SendBatch {
    /** Receivers tracked at once; a sender that floods to more flushes the others per frame (as without a batch). */
    static final int MAX_PORTS = 16;
    private final SwitchPort[] ports = new SwitchPort[MAX_PORTS];
    private int count;
    /**
     * The one receiving port whose delivery lock this batch still holds after its last frame (null: none), and the
     * hold: a run of frames to one port takes its lock once, not per frame. Never more than one, and given back
     * before another port's lock is taken, so two senders never wait for each other's ports.
     */
    SwitchPort held;
    long heldHold;

    /** Remembers {@code p} as holding unflushed frames of this sender; false if the batch is full (flush it now). */
    boolean add(SwitchPort p) {
        for (int i = 0; i < count; i++) if (ports[i] == p) return true;
        if (count == MAX_PORTS) return false;
        ports[count++] = p;
        return true;
    }

    /** Makes every frame this sender delivered since the last flush visible to its receiver. */
    public void flush() {
        // In the order the frames went out (a receiver's publication order is part of what a bus dying mid-flush
        // leaves behind: BusRestartTest's tripwire). Each port's flush takes its lock only after giving back the one
        // this batch still holds (SwitchPort#flushDeliveries): holding one while waiting for another let two batches
        // that crossed (X holding c with b to flush, Y holding b with c to flush) wait for each other.
        for (int i = 0; i < count; i++) {
            ports[i].flushDeliveries(this);
            ports[i] = null;
        }
        count = 0;
        SwitchPort h = held;                 // only if its port was not in the batch (cannot happen; never leave a lock behind)
        if (h != null) h.release(this);
    }

    /** Receivers with unflushed frames (for tests). */
    int pending() {
        return count;
    }
}
