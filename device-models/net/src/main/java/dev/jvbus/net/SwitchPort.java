package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.EnumMap;
import java.util.Map;
import java.util.OptionalLong;

/**
 * One port of an {@link L2Switch}: a backend plus its counters. The port's owner (a device worker,
 * a TAP reader) sends frames with {@link #send}; the switch delivers frames to it through its
 * backend, one at a time.
 *
 * <p>Counters are plain fields: the rx side is written only by the port's own sender; the tx side
 * and drops only under the port's delivery lock. Readers (metrics) may see a slightly old value,
 * never a torn or lost one.
 */
public final class SwitchPort {
    private static final VarHandle LOCK;

    static {
        try {
            LOCK = MethodHandles.lookup().findVarHandle(SwitchPort.class, "deliveryLock", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** {@link #assignedSource} of a port that may send from any source MAC (a TAP: the kernel's many MACs). */
    static final long ANY_SOURCE = -1L;

    private final L2Switch sw;
    private final NetPort backend;
    private final int id;
    /** The only source MAC this port may send from, or {@link #ANY_SOURCE}. Fixed at join: read per frame, never locked. */
    final long assignedSource;
    @SuppressWarnings("unused") // accessed through LOCK
    private volatile int deliveryLock;
    private boolean left;              // under deliveryLock

    long rxFrames, rxBytes;            // sender thread only
    long txFrames, txBytes;            // under deliveryLock
    final long[] drops = new long[DropReason.values().length]; // under deliveryLock, except RUNT/HAIRPIN/SPOOFED_SOURCE (sender)

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

    /** Sends one frame from this port into the switch. Called by this port's owner only (one thread at a time). */
    public void send(MemorySegment frame, long offset, int length) {
        sw.forward(this, frame, offset, length);
    }

    /**
     * Delivers a frame to this port's backend. Deliveries from several senders are serialised by a
     * short spin lock held for one copy: the receiving ring has one producer at a time, and the
     * counters stay exact without atomics per frame.
     */
    void deliver(MemorySegment frame, long offset, int length) {
        while (!LOCK.compareAndSet(this, 0, 1)) Thread.onSpinWait();
        try {
            if (left) return;
            DropReason r;
            try {
                r = backend.deliver(frame, offset, length);
            } catch (RuntimeException e) {
                r = DropReason.BACKEND_ERROR;   // a broken backend costs its own frames, nothing more
            }
            if (r == null) {
                txFrames++;
                txBytes += length;
            } else {
                drops[r.ordinal()]++;
            }
        } finally {
            LOCK.setRelease(this, 0);
        }
    }

    /**
     * Marks the port gone, under its delivery lock: a delivery in progress finishes first, and a
     * sender still holding an old port snapshot finds the port closed instead of touching a
     * backend whose memory may be freed.
     */
    void close() {
        while (!LOCK.compareAndSet(this, 0, 1)) Thread.onSpinWait();
        left = true;
        LOCK.setRelease(this, 0);
    }

    public PortStats stats() {
        Map<DropReason, Long> d = new EnumMap<>(DropReason.class);
        for (DropReason r : DropReason.values()) if (drops[r.ordinal()] != 0) d.put(r, drops[r.ordinal()]);
        return new PortStats(name(), rxFrames, rxBytes, txFrames, txBytes, d);
    }

    /** Leaves the switch: no more deliveries start after this returns. */
    public void leave() {
        sw.leave(this);
    }

    @Override
    public String toString() {
        return "SwitchPort[" + sw.name() + "#" + id + " " + name() + "]";
    }
}
