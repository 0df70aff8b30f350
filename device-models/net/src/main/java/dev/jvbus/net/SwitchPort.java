package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.EnumMap;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One port of an {@link L2Switch}: a backend plus its counters. The port's owner (a device worker,
 * a TAP reader) sends frames with {@link #send}; the switch delivers frames to it through its
 * backend, one at a time.
 *
 * <p>Counters are plain fields: the rx side (ingress) is written only by the sending thread it belongs to
 * (the port's own {@link #send}, or one of its {@link #sender() senders}, one per tx queue of a multiqueue
 * device: several threads send from one port at once, each into its own counters); the tx side
 * and drops only under the port's delivery lock, except {@link DropReason#PORT_STALLED}, counted
 * atomically by senders that did not get the lock. Readers (metrics) may see a slightly old value,
 * never a torn or lost one.
 *
 * <p><b>A wedged receiver costs its senders a drop, not a wait.</b> Deliveries run on the senders'
 * threads, so a delivery stuck in its backend (a call that does not return) would otherwise hold
 * every later sender to this port spinning for ever. The lock word counts holds (odd while held);
 * a sender that finds the same hold in place for longer than the switch's stall bound marks that
 * hold stalled and drops as PORT_STALLED, and every sender after it drops at once while that hold
 * lasts. So a sender pays at most one stall bound per stuck delivery; a delivery that is merely slow
 * (its thread preempted) is waited for, because the bound is far above a scheduling delay.
 */
public final class SwitchPort {
    private static final System.Logger LOG = System.getLogger(SwitchPort.class.getName());
    private static final VarHandle HOLD, STALLED_DROPS;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            HOLD = l.findVarHandle(SwitchPort.class, "hold", long.class);
            STALLED_DROPS = l.findVarHandle(SwitchPort.class, "stalledDrops", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** {@link #assignedSource} of a port that may send from any source MAC (a TAP: the kernel's many MACs). */
    static final long ANY_SOURCE = -1L;

    private final L2Switch sw;
    private final NetPort backend;
    private final int id;
    /**
     * The only source MAC this port may send from, or {@link #ANY_SOURCE}. Set at join, changed only when the
     * driver changes its MAC ({@link L2Switch#reassign}, under the switch's change lock): read per frame, never locked.
     */
    volatile long assignedSource;
    /** Which frames the port takes (its driver's rx mode); replaced whole by {@link #rxFilter(RxFilter)}, read per frame. */
    private volatile RxFilter rxFilter = RxFilter.ACCEPT_ALL;
    @SuppressWarnings("unused") // accessed through HOLD: even = free, odd = held; +1 to take, +1 to give back
    private volatile long hold;
    private volatile long stalledHold = -1;   // the hold found stuck, if any (written by senders)
    private volatile boolean left;
    @SuppressWarnings("unused") // accessed through STALLED_DROPS
    private volatile long stalledDrops;

    /** What the port's own {@link #send} counts at ingress (one sending thread at a time). */
    final Ingress ingress = new Ingress();
    /** The ingress counters of the port's extra {@link Sender}s, read only to sum them (replaced whole; a few per port). */
    private volatile Ingress[] senders = new Ingress[0];
    long txFrames, txBytes;            // under the delivery lock
    final long[] drops = new long[DropReason.values().length]; // under the delivery lock (ingress drops are counted in Ingress)
    long framesSegmented, checksumsCompleted, superFramesOut;   // under the delivery lock
    private Segmenter segmenter;                // under the delivery lock; made on the first frame that needs it

    SwitchPort(L2Switch sw, NetPort backend, int id, long assignedSource) {
        this.sw = sw;
        this.backend = backend;
        this.id = id;
        this.assignedSource = assignedSource;
    }

    public int id() { return id; }

    public String name() { return backend.name(); }

    public NetPort backend() { return backend; }

    /** The source MAC this port is held to, if the switch enforces one (see {@link MacSpoofCheck}). */
    public OptionalLong assignedSource() {
        return assignedSource == ANY_SOURCE ? OptionalLong.empty() : OptionalLong.of(assignedSource);
    }

    public L2Switch network() { return sw; }

    /** The port's receive filter (its driver's rx mode and address tables). */
    public RxFilter rxFilter() { return rxFilter; }

    /**
     * Sets which frames the port takes from now on: frames for addresses the filter refuses are not
     * delivered (not counted as drops: the driver asked not to see them), and a filter that
     * {@link RxFilter#wantsForeignUnicast() wants other ports' unicast} gets a copy of each.
     */
    public void rxFilter(RxFilter filter) {
        sw.filterChanged(this, java.util.Objects.requireNonNull(filter, "filter"));
    }

    void setRxFilter(RxFilter filter) { rxFilter = filter; }

    /** Whether the port takes a frame for {@code dst} (one volatile read; nothing allocated). */
    boolean wants(long dst) { return rxFilter.accepts(dst); }

    /**
     * What one sending thread counts at the port's ingress: frames and bytes taken in, frames refused there
     * (RUNT, HAIRPIN, SPOOFED_SOURCE, BAD_OFFLOAD). Plain fields written by that thread only, so a port with
     * several senders (a multiqueue device's tx workers, see {@link #sender()}) keeps exact counts without an
     * atomic per frame; readers sum them.
     */
    static final class Ingress {
        long frames, bytes;
        final long[] drops = new long[DropReason.values().length];
        /**
         * The last frame's lookup ({@link L2Switch#forward}): under MAC table {@code table} (immutable: any learning,
         * ageing or port change makes a new one), a frame from {@code src} to {@code dst} needs no learning and goes
         * to {@code to} (null: flooded). A stream of frames between the same two stations, the usual batch, then
         * costs one compare of each instead of two hash lookups. Null table: nothing cached.
         */
        MacTable table;
        long src, dst;
        SwitchPort to;

        /** A frame dropped at ingress for {@code r}. */
        void drop(DropReason r) {
            drops[r.ordinal()]++;
        }
    }

    /**
     * A second (third, ...) way into the switch from this port, for one more sending thread: a multiqueue
     * device gives each of its tx workers one, so they send at once without sharing a counter or a lock.
     * Everything else about the frame (source check, learning, delivery) is the port's. Each sender lives as
     * long as the port; its owner makes a bounded number (one per queue it may send from), on its control path.
     */
    public Sender sender() {
        Ingress in = new Ingress();
        synchronized (this) {
            Ingress[] old = senders;
            Ingress[] next = java.util.Arrays.copyOf(old, old.length + 1);
            next[old.length] = in;
            senders = next;
        }
        return new Sender(in);
    }

    /** One sending thread's way into the switch from this port (see {@link #sender()}); used by one thread at a time. */
    public final class Sender {
        private final Ingress in;

        private Sender(Ingress in) { this.in = in; }

        /** As {@link SwitchPort#send(MemorySegment, long, int, FrameMeta)}, counted on this sender. */
        public void send(MemorySegment frame, long offset, int length, FrameMeta meta) {
            sw.forward(SwitchPort.this, in, frame, offset, length, meta);
        }

        /** Frames this sender took into the switch (each also counts in the port's {@link #framesIn()}). */
        public long framesIn() { return in.frames; }

        public SwitchPort port() { return SwitchPort.this; }
    }

    /** Sends one bare frame from this port into the switch ({@link FrameMeta#BARE}). Called by this port's owner only (one thread at a time). */
    public void send(MemorySegment frame, long offset, int length) {
        sw.forward(this, ingress, frame, offset, length, FrameMeta.BARE);
    }

    /**
     * Sends one frame with what its sender says of it ({@link FrameMeta}: its offload header, its place in the
     * sender's transmit order, the sender's batch), valid only during this call. A header not yet
     * {@link FrameOffload#check checked} is checked here; one that does not describe the frame is dropped at
     * ingress as {@link DropReason#BAD_OFFLOAD}. A receiver that keeps a delivery log tells a replayed frame by
     * its origin. With a batch, the receivers may leave the frame unpublished until {@link SendBatch#flush()},
     * which the sender calls at the end of its batch (one used-index store and one wake-up decision per receiver
     * per batch, not per frame). Called by this port's owner only (one thread at a time); other threads send
     * through their own {@link #sender()}.
     */
    public void send(MemorySegment frame, long offset, int length, FrameMeta meta) {
        sw.forward(this, ingress, frame, offset, length, meta);
    }

    /**
     * Delivers a frame to this port's backend. Deliveries from several senders are serialised by a
     * short spin lock held for one copy: the receiving ring has one producer at a time, and the
     * counters stay exact without atomics per frame. A lock held past the stall bound is not
     * waited for (see the class comment). A sender's batch ({@link FrameMeta#batch()}) keeps the lock
     * from one frame to the next while they go to this port (one CAS per run, not per frame), and gives
     * it back before it takes another port's, or at its flush; so it holds at most one, for a batch's time.
     *
     * <p>The backend gets the frame in the form it takes ({@link NetPort#offloadsTaken()}): as it is, with
     * its header, if it takes everything the header asks; otherwise segmented or with its checksum
     * completed here, in this port's scratch buffer (see {@link Segmenter}), each piece with DATA_VALID
     * for a backend that takes checksums and with no header for one that does not. DATA_VALID alone
     * never reaches a backend that does not take checksums.
     */
    void deliver(MemorySegment frame, long offset, int length, FrameMeta meta) {
        SendBatch batch = meta.batch();
        // A batch that delivered here last still holds the lock: the next frame of a run to one port pays no CAS.
        // Nor a reference store: batch.held is written only when it changes, because a reference store into a
        // long-lived object runs G1's post-write barrier, which on JDK 25 has a StoreLoad fence that waits for the
        // frame's stores into the receiver's buffer (2 % of the switch's CPU per frame in one thread, benchmarks/README,
        // session 14).
        boolean carried = batch != null && batch.held == this;
        long h = carried ? batch.heldHold : take(batch);
        if (h < 0) return;
        boolean keep = carried;   // hold on into the sender's next frame (the port is in its batch)
        try {
            // One exit from this try: javac copies the finally block to every exit, and a method that small C2
            // compiles into the switch's forward, not called per frame (FreqInlineSize).
            keep = deliverHeld(frame, offset, length, meta, batch, carried);
        } finally {
            if (keep) {
                if (batch.held != this) batch.held = this;   // once per run, not per frame (see the top)
                batch.heldHold = h;
            } else {
                if (carried) batch.held = null;
                unlock(h);
            }
        }
    }

    /** Under the lock: the frame to the backend, in the form it takes. Returns whether the sender's batch keeps the lock. */
    private boolean deliverHeld(MemorySegment frame, long offset, int length, FrameMeta meta, SendBatch batch, boolean carried) {
        if (left) return false;
        int takes;
        try {
            takes = backend.offloadsTaken();
        } catch (RuntimeException e) {
            drops[DropReason.BACKEND_ERROR.ordinal()]++;
            return carried;
        }
        FrameOffload offload = meta.offload();
        if ((offload.needs() & ~takes) == 0) {
            FrameOffload o = offload.dataValid() && (takes & FrameOffload.TAKES_CSUM) == 0 ? FrameOffload.NONE : offload;
            DropReason r = deliverOne(frame, offset, length, o, meta.origin(), meta.stays());
            if (r == null && offload.isGso()) superFramesOut++;
            count(r, length);
            return flushUnlessBatched(batch);
        }
        return deliverSegmented(frame, offset, length, offload, takes, meta.origin()) ? flushUnlessBatched(batch) : carried;
    }

    /**
     * The lock, for a frame whose sender's batch does not hold it already: the hold, or -1 if a stuck holder kept it
     * past the stall bound (the frame is dropped, counted). Out of {@link #deliver}, as the other rare paths are, to
     * keep that small enough for C2 to compile into the sender's loop.
     */
    private long take(SendBatch batch) {
        if (batch != null && batch.held != null) batch.held.release(batch);   // never wait for a lock while holding another
        long h = lock();
        if (h < 0) STALLED_DROPS.getAndAdd(this, 1L);
        return h;
    }

    /**
     * Under the lock: a frame that asks for an offload the backend does not take, segmented or with its checksum
     * completed here, in this port's scratch buffer ({@link Segmenter}), piece by piece. False if the header does
     * not describe the frame (dropped, counted as {@link DropReason#BAD_OFFLOAD}).
     */
    private boolean deliverSegmented(MemorySegment frame, long offset, int length, FrameOffload offload, int takes, int origin) {
        Segmenter s = segmenter;
        if (s == null) segmenter = s = new Segmenter();   // once per port, on its first frame that needs it
        int pieces;
        try {
            pieces = s.begin(frame, offset, length, offload, (takes & FrameOffload.TAKES_CSUM) != 0);
        } catch (RuntimeException e) {
            pieces = -1;
        }
        if (pieces < 0) {
            drops[DropReason.BAD_OFFLOAD.ordinal()]++;
            return false;
        }
        if (offload.isGso()) framesSegmented++;
        else checksumsCompleted++;
        for (int i = 0; i < pieces; i++) {
            int n = s.piece(i);
            count(deliverOne(s.out(), 0, n, s.pieceHeader, origin, false), n);   // the next piece reuses s.out()
        }
        return true;
    }

    /**
     * Under the lock: the backend publishes now, unless the sender's batch takes this port and flushes it at its
     * end; true if the batch took it (the caller may then keep the lock for the batch's next frame).
     */
    private boolean flushUnlessBatched(SendBatch batch) {
        if (batch != null && batch.add(this)) return true;
        flushBackend();
        return false;
    }

    /** Under the delivery lock: the backend publishes; frames lost then are counted, as at the end of a run. */
    private void flushBackend() {
        try {
            int lost = backend.flush();
            if (lost > 0) drops[DropReason.RING_FAULT.ordinal()] += lost;
        } catch (RuntimeException e) {
            drops[DropReason.BACKEND_ERROR.ordinal()]++;
        }
    }

    /**
     * The batch that holds this port's lock between frames goes on to another port (or ends): the backend makes any
     * copy it put off ({@link NetPort#endRun()}: the frames stay only while this sender is here), the lock is given
     * back; what the backend took stays unpublished until the batch's {@link SendBatch#flush()}.
     */
    void release(SendBatch batch) {
        long h = batch.heldHold;
        batch.held = null;
        try {
            if (!left) endRunBackend();
        } finally {
            unlock(h);
        }
    }

    /** Under the delivery lock: the sender's run here ends ({@link NetPort#endRun()}); frames lost then are counted. */
    private void endRunBackend() {
        try {
            int lost = backend.endRun();
            if (lost > 0) drops[DropReason.RING_FAULT.ordinal()] += lost;
        } catch (RuntimeException e) {
            drops[DropReason.BACKEND_ERROR.ordinal()]++;
        }
    }

    /**
     * A sender's batch ends ({@link SendBatch#flush()}): the backend publishes what it took. Under the delivery
     * lock, so it never runs beside a delivery: the batch's own hold if it still has one here, else taken now (after
     * the batch gave back the hold it kept on another port: never two at once); a
     * port whose holder is stuck past the stall bound is skipped (its next delivery's flush publishes), a port
     * that left has nothing to publish.
     */
    void flushDeliveries(SendBatch batch) {
        long h;
        if (batch.held == this) {
            h = batch.heldHold;
            batch.held = null;
        } else {
            if (batch.held != null) batch.held.release(batch);   // never wait for a lock while holding another
            h = lock();
            if (h < 0) return;
        }
        try {
            if (!left) {
                endRunBackend();   // the run ends here too: put-off copies are made (and counted) before the publication
                flushBackend();
            }
        } finally {
            unlock(h);
        }
    }

    private DropReason deliverOne(MemorySegment frame, long offset, int length, FrameOffload o, int origin, boolean stays) {
        try {
            if (stays) return backend.deliverStaying(frame, offset, length, o, origin);
            return origin == NetPort.NO_ORIGIN ? backend.deliver(frame, offset, length, o) : backend.deliver(frame, offset, length, o, origin);
        } catch (RuntimeException e) {
            return DropReason.BACKEND_ERROR;   // a broken backend costs its own frames, nothing more
        }
    }

    private void count(DropReason r, int length) {
        if (r == null) {
            txFrames++;
            txBytes += length;
        } else {
            drops[r.ordinal()]++;
        }
    }

    /** How many times the delivery lock was taken and given back (for tests: what a run of frames costs). */
    long holdsTaken() {
        return ((long) HOLD.getVolatile(this)) >>> 1;
    }

    /** Takes the delivery lock: the hold taken (odd), or -1 if the holder is stuck past the stall bound. */
    private long lock() {
        long v = (long) HOLD.getVolatile(this);
        if ((v & 1) == 0 && HOLD.compareAndSet(this, v, v + 1)) return v + 1;
        return lockContended();
    }

    private long lockContended() {
        long waitingFor = -1, since = 0;
        int spins = 0;
        while (true) {
            long v = (long) HOLD.getVolatile(this);
            if ((v & 1) == 0) {
                if (HOLD.compareAndSet(this, v, v + 1)) return v + 1;
                continue;
            }
            if (v == stalledHold) return -1;            // found stuck already: do not wait again
            long now = System.nanoTime();
            if (v != waitingFor) {                       // another hold than before: it is making progress
                waitingFor = v;
                since = now;
                spins = 0;
            } else if (now - since > sw.stallNanos()) {
                stalled(v);
                return -1;
            }
            // Spin for a copy's worth, then let a preempted holder have the CPU, then sleep in short steps:
            // only contended deliveries get here, never one per frame on an idle port.
            if (++spins < 100) Thread.onSpinWait();
            else if (spins < 200) Thread.yield();
            else LockSupport.parkNanos(50_000);
        }
    }

    private void stalled(long h) {
        if (stalledHold == h) return;
        stalledHold = h;
        LOG.log(System.Logger.Level.WARNING, "{0}: a delivery has been inside the port for more than {1} ms (the receiver is"
                + " stuck in a call that does not return); frames to it are dropped as PORT_STALLED until it returns",
                this, String.valueOf(sw.stallNanos() / 1_000_000));
    }

    private void unlock(long h) {
        HOLD.setRelease(this, h + 1);
        if (stalledHold == h) LOG.log(System.Logger.Level.WARNING, "{0}: the stalled delivery returned; the port takes frames again", this);
    }

    /**
     * Marks the port gone and waits out a delivery in progress: after this returns no delivery starts,
     * and a sender still holding an old port snapshot finds the port closed instead of touching a
     * backend whose memory may be freed.
     *
     * @return false if a delivery was stuck inside past the stall bound (logged): the port is gone for
     *         every later sender, but that one delivery is still in the backend and returns when its call does
     */
    boolean close() {
        left = true;
        long h = lock();
        if (h < 0) {
            LOG.log(System.Logger.Level.WARNING, "{0}: leaves the switch with a delivery still stuck inside past {1} ms;"
                    + " the backend must tolerate that delivery returning late", this, String.valueOf(sw.stallNanos() / 1_000_000));
            return false;
        }
        unlock(h);
        return true;
    }

    // ---- one counter each, for metrics read at scrape time (racy plain reads, each exact; nothing allocated) ----

    /** Frames this port sent into the switch (PortStats' rx). */
    public long framesIn() {
        long n = ingress.frames;
        for (Ingress i : senders) n += i.frames;
        return n;
    }

    /** Bytes of the frames this port sent into the switch. */
    public long bytesIn() {
        long n = ingress.bytes;
        for (Ingress i : senders) n += i.bytes;
        return n;
    }

    /** Frames refused for {@code r} at ingress, by every sender of this port. */
    private long ingressDrops(DropReason r) {
        long n = ingress.drops[r.ordinal()];
        for (Ingress i : senders) n += i.drops[r.ordinal()];
        return n;
    }

    /** Frames the switch delivered to this port (PortStats' tx). */
    public long framesOut() { return txFrames; }

    /** Bytes of the frames the switch delivered to this port. */
    public long bytesOut() { return txBytes; }

    /**
     * Super-frames the switch cut into segments for this port, because its backend does not take their
     * segmentation offload (each segment delivered counts in {@link #framesOut()}).
     */
    public long framesSegmented() { return framesSegmented; }

    /**
     * Super-frames (a GSO header: TSO, USO) the switch delivered to this port whole, because its backend takes
     * their segmentation offload: the proof that a sender's segmentation offload reached its receiver
     * unsegmented (each also counts in {@link #framesOut()}).
     */
    public long superFramesOut() { return superFramesOut; }

    /** Frames whose partial checksum the switch completed for this port, because its backend does not take checksum offload. */
    public long checksumsCompleted() { return checksumsCompleted; }

    /** Frames dropped at this port for {@code reason}, as {@link PortStats#dropped(DropReason)} counts them. */
    public long dropped(DropReason reason) {
        long n = drops[reason.ordinal()] + ingressDrops(reason);
        return reason == DropReason.PORT_STALLED ? n + stalledDrops : n;
    }

    /** A snapshot of this port for operators. */
    public PortInfo info() {
        return new PortInfo(id, name(), backend.describe(),
                assignedSource == ANY_SOURCE ? java.util.Optional.empty() : java.util.Optional.of(MacAddress.toString(assignedSource)),
                stats());
    }

    public PortStats stats() {
        Map<DropReason, Long> d = new EnumMap<>(DropReason.class);
        for (DropReason r : DropReason.values()) {
            long n = drops[r.ordinal()] + ingressDrops(r);
            if (n != 0) d.put(r, n);
        }
        long stalled = stalledDrops;
        if (stalled != 0) d.merge(DropReason.PORT_STALLED, stalled, Long::sum);
        return new PortStats(name(), framesIn(), bytesIn(), txFrames, txBytes, d);
    }

    /**
     * Leaves the switch: no more deliveries start after this returns.
     *
     * @return false if a delivery stuck in the backend was still inside after the stall bound (see {@link #close()})
     */
    public boolean leave() {
        return sw.leave(this);
    }

    @Override
    public String toString() {
        return "SwitchPort[" + sw.name() + "#" + id + " " + name() + "]";
    }
}
