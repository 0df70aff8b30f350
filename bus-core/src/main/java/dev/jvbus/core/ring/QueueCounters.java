package dev.jvbus.core.ring;

/**
 * One queue's counters, for the device's whole life: what its data path did, bumped as plain fields by
 * the one thread that runs that side of the queue (the ring's worker, or the delivery that fills it),
 * and read racily by the management plane (the device detail, metrics: each value is exact, the set is
 * not atomic). The device makes one per queue at hotplug and hands it to every ring it builds for that
 * queue ({@code QueueBinding.counters()}), so the counts go on across driver resets, queue restarts and
 * restores, and never go down: a Micrometer {@code FunctionCounter} reads them as they are
 * ({@code FunctionCounter.builder(name, counters, QueueCounters::buffers)}).
 *
 * <p>Hot path: an increment of a field this object already holds; no allocation, no lock, no syscall.
 * The counters sit between two cache lines of padding, so the rx and tx counters of one device
 * (written by two threads, allocated side by side) never share a line.
 *
 * <p>Besides the counts it holds a view of the ring that runs the queue now ({@link #ring()}), attached
 * by the ring when it is built and detached by the device when the queue stops, so an operator sees the
 * indices as the device sees them.
 */
public final class QueueCounters extends QueueCountersFields {
    @SuppressWarnings("unused")
    private long p10, p11, p12, p13, p14, p15, p16, p17;   // padding after the counters (see QueueCountersPadding)

    public QueueCounters() { }

    // ---- bumped by the data path (one writer per queue) ----

    /** One buffer returned to the driver, carrying {@code bytes} (see {@link #bytes()}). */
    public void completed(long bytes) {
        buffers++;
        this.bytes += bytes;
    }

    /** {@code n} buffers returned at once, carrying {@code bytes} in all. */
    public void completed(int n, long bytes) {
        buffers += n;
        this.bytes += bytes;
    }

    /** The driver's doorbell was found rung {@code count} times since it was last drained. */
    public void kicked(long count) {
        kicks += count;
    }

    /**
     * The queue's worker woke (for another queue's doorbell, a wakeup, or its sleep's bound) and found this
     * queue with work its driver had not rung for: it slept with work pending. One is a race at most; a count that
     * grows is a stall (a doorbell suppressed while the ring had work), served only as late as something else woke
     * the worker.
     */
    public void lateWakeup() {
        lateWakeups++;
    }

    /** {@code lines} cache lines of the ring or its buffers were evicted after the device read them ({@code CacheLines}); once per batch. */
    public void evicted(int lines) {
        linesEvicted += lines;
    }

    /** The driver was signalled (used-buffer notification, shm-signal). */
    public void notified() {
        notificationsSent++;
    }

    /** A notification the driver had suppressed (EVENT_IDX, NO_INTERRUPT, shm-signal disabled or pending). */
    public void suppressed() {
        notificationsSuppressed++;
    }

    /** The other side broke a ring rule: counted by reason (rare, never per buffer). */
    public void fault(QueueFault.Reason reason) {
        faults[reason.ordinal()]++;
    }

    /** A ring now runs this queue: the view the management plane reads its indices through. */
    public void attach(RingPosition ring) {
        this.ring = ring;
    }

    /** The queue stopped: no ring runs it (the counts stay). */
    public void detach() {
        this.ring = null;
    }

    // ---- read by the management plane (racy, each value exact) ----

    /** Buffers the device returned to the driver (used, completed). */
    public long buffers() { return buffers; }

    /**
     * Bytes the returned buffers carried: on a split ring, each buffer's device-readable bytes plus the
     * length the device wrote into it (the used length); on an IOQ ring, the length the device completed
     * the descriptor with (venet: the frame it sent or received).
     */
    public long bytes() { return bytes; }

    /** Doorbell rings from the driver the device's worker took (each eventfd signal counts one). */
    public long kicks() { return kicks; }

    /** Wake-ups that found this queue with work and its doorbell not rung: it slept with work pending ({@link #lateWakeup()}). */
    public long lateWakeups() { return lateWakeups; }

    /** Cache lines of the ring the device evicted after reading them, so that the driver's next write to them is cheaper. */
    public long linesEvicted() { return linesEvicted; }

    /** Notifications sent to the driver. */
    public long notificationsSent() { return notificationsSent; }

    /** Notifications the driver had asked not to get. */
    public long notificationsSuppressed() { return notificationsSuppressed; }

    /** Faults with {@code reason} found on this queue. */
    public long faults(QueueFault.Reason reason) { return faults[reason.ordinal()]; }

    /** Faults of every reason found on this queue. */
    public long faults() {
        long n = 0;
        for (long f : faults) n += f;
        return n;
    }

    /** The ring running the queue now, or null while it is stopped. */
    public RingPosition ring() { return ring; }

    @Override
    public String toString() {
        return "QueueCounters[buffers=" + buffers + ", bytes=" + bytes + ", kicks=" + kicks + ", late=" + lateWakeups + ", evicted=" + linesEvicted + ", notified=" + notificationsSent
                + ", suppressed=" + notificationsSuppressed + ", faults=" + faults() + "]";
    }
}

/** Two cache lines before the counters: fields of a superclass are laid out before a subclass's. */
abstract class QueueCountersPadding {
    @SuppressWarnings("unused")
    private long p00, p01, p02, p03, p04, p05, p06, p07;
}

/** The counters themselves, between the paddings. */
abstract class QueueCountersFields extends QueueCountersPadding {
    long buffers, bytes, kicks, lateWakeups, notificationsSent, notificationsSuppressed, linesEvicted;
    final long[] faults = new long[QueueFault.Reason.values().length];
    volatile RingPosition ring;
}
