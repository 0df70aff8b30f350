package dev.jvbus.core.ring;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryHold;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Pollable;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The worker of a device's queue(s): poll while there is work, then arm the doorbells, re-check,
 * and wait (spin briefly, then sleep in epoll) — the loop {@link DoorbellWait} documents. It runs on a
 * thread of its own, or as one member of a {@link PollGroup} whose one thread goes round several devices'
 * queues (the same loop over all of them); either way it can be quiesced for a save (it finishes its batch
 * and parks, the rings untouched), resumed and stopped alone.
 *
 * <p>A {@link QueueFault} from the service stops the worker and is handed to {@code onFault}
 * (which sets the device NEEDS_RESET); any other exception is treated the same way, with the
 * fault reason BAD_DESCRIPTOR, because a worker must never die silently with the device looking live.
 * {@code onFault} runs on the worker's thread, which a control thread may be waiting for while it
 * holds the device's lock: it must not take that lock (report through
 * {@link dev.jvbus.core.spi.DataPathRun#needsReset}, which never blocks).
 *
 * <p>Waiting for the worker ({@link #quiesce}, {@link #stop}) is bounded. A worker can be stuck inside
 * a batch only in a call that does not return (a delivery into another device, a doorbell); past the
 * bound the waiter is told (false), the worker stays asked to park or stop and does so when the call
 * returns, and its service must not touch a ring of a later run (it checks
 * {@link dev.jvbus.core.spi.DataPathRun#isCurrent()}).
 *
 * <p>Memory. A worker {@link #holding holds} the guest memory its rings lie in from its start until the
 * thread serving it (its own or its poll group's) has let it go after its last batch, so a worker left behind keeps that memory mapped however long it takes to return
 * (the memory's owner may have closed meanwhile): the rings' direct accesses never meet an unmapped page
 * ({@link dev.jvbus.core.sys.MappingLifetime}).
 */
public final class QueueWorker implements AutoCloseable {
    /** How long {@link #quiesce()} and {@link #close()} wait for the worker: a batch takes microseconds. */
    public static final Duration WAIT_BOUND = Duration.ofSeconds(5);
    private static final Logger LOG = Logger.getLogger(QueueWorker.class.getName());
    private final String name;
    final QueueService service;
    final Consumer<QueueFault> onFault;
    final int queue;
    final List<EventFd> doorbells;
    /** Fds that wake this worker while readable and that its own poll reads (a TAP's): never drained by the wait. */
    final List<Pollable> readables;
    /**
     * False for a member that follows the queues it answers (a TAP's reads, put in the group of the device it
     * serves): it does not count in the group's {@link PollGroup#size()}, so the device's queue that picks a group
     * after it still lands in the same one.
     */
    final boolean countsForPlacement;
    /** Run once when the serving thread has let this worker go (its last poll returned): the owner may close what it polled. */
    private volatile Runnable whenGone = () -> {};
    /**
     * The group serving this worker: its own (a group of one, whose thread has the worker's name) or a shared one; set
     * again by the join if the group given was over by then and another took the worker in ({@link PollGroup#join}).
     */
    volatile PollGroup group;
    private final boolean ownGroup;
    /** Per doorbell (by its index in {@link #doorbells}), the counters its kicks go to, or null: the serving thread writes them. */
    private final QueueCounters[] kickCounts;
    /** Where the group registered {@link #doorbells} in its wait (null: not registered); under this object's monitor. */
    int[] slots;

    /** What a call of the serving thread into this worker's service outside its poll threw (the group's thread only). */
    Throwable failed;
    volatile boolean stop;
    volatile boolean quiesceRequested;
    /** Set by the group's thread at the top of a round, cleared by {@link #resume}: while set, nothing touches the rings. */
    volatile boolean parked;
    private volatile boolean started;
    private volatile boolean gone;
    /**
     * The memory this worker's rings lie in: released once the serving thread has let the worker go
     * ({@link #gone}, after its last batch) or at stop if it never started (see {@link dev.jvbus.core.sys.MappingLifetime}'s rule).
     */
    private volatile MemoryHold memoryHold = MemoryHold.NONE;
    /**
     * The rings' memory maps a file its peer can still shrink ({@link GuestMemory#canShrink()}): the serving thread
     * makes a fault of this worker's calls surface inside them ({@link dev.jvbus.core.memory.MappedMemoryFault#surface()}),
     * so that it is this worker's, never blamed on the member served next. Set before start.
     */
    boolean memoryCanShrink;
    private final Object parkLock = new Object();
    private long lateWakeups;   // the serving thread writes it, others read it racily

    /**
     * A worker on a thread of its own.
     *
     * @param queue     the queue index reported in faults that are not ring faults
     * @param doorbells the kicks that wake this worker (not owned: the connector closes them)
     */
    public QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells,
                       DoorbellWait.Mode mode, Consumer<QueueFault> onFault) {
        this(name, queue, service, doorbells, null, mode, onFault);
    }

    /**
     * As above, counting each doorbell's kicks into its queue's counters: {@code kickCounts.get(i)} (or
     * null) for {@code doorbells.get(i)}.
     */
    public QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells, List<QueueCounters> kickCounts,
                       DoorbellWait.Mode mode, Consumer<QueueFault> onFault) {
        this(name, queue, service, doorbells, kickCounts, new PollGroup(name, mode), true, onFault);
    }

    /**
     * A worker served by {@code group}'s thread, beside the group's other members (see {@link PollGroup}); its
     * service's {@link QueueService#poll()} must do one bounded batch, so the others get their turn.
     */
    public QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells, List<QueueCounters> kickCounts,
                       PollGroup group, Consumer<QueueFault> onFault) {
        this(name, queue, service, doorbells, kickCounts, Objects.requireNonNull(group, "group"), false, onFault);
    }

    /**
     * A member of {@code group} woken by fds it reads itself ({@code readables}, e.g. a TAP: level-triggered, never
     * drained by the wait) rather than by doorbells; it does not count in the group's size ({@link #countsForPlacement}).
     */
    public static QueueWorker reading(String name, QueueService service, List<? extends Pollable> readables, PollGroup group,
                                      Consumer<QueueFault> onFault) {
        return new QueueWorker(name, -1, service, List.of(), List.copyOf(readables), null, Objects.requireNonNull(group, "group"), false, onFault);
    }

    private QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells, List<QueueCounters> kickCounts,
                        PollGroup group, boolean ownGroup, Consumer<QueueFault> onFault) {
        this(name, queue, service, doorbells, List.of(), kickCounts, group, ownGroup, onFault);
    }

    private QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells, List<Pollable> readables,
                        List<QueueCounters> kickCounts, PollGroup group, boolean ownGroup, Consumer<QueueFault> onFault) {
        if (kickCounts != null && kickCounts.size() != doorbells.size())
            throw new IllegalArgumentException(kickCounts.size() + " kick counters for " + doorbells.size() + " doorbells");
        this.kickCounts = new QueueCounters[doorbells.size()];
        if (kickCounts != null) for (int i = 0; i < this.kickCounts.length; i++) this.kickCounts[i] = kickCounts.get(i);
        this.name = name;
        this.queue = queue;
        this.service = service;
        this.onFault = onFault;
        this.doorbells = List.copyOf(doorbells);
        this.readables = readables;
        this.countsForPlacement = readables.isEmpty();
        this.group = group;
        this.ownGroup = ownGroup;
    }

    /**
     * Holds {@code memory} (the memory of the rings this worker serves) until the serving thread has let the worker go;
     * call before {@link #start}, while the memory is certainly mapped (the ring was just set up in it).
     */
    public QueueWorker holding(GuestMemory memory) {
        if (started) throw new IllegalStateException("hold the memory before the worker starts");
        memoryHold.release();
        memoryHold = memory.hold();
        memoryCanShrink = memory.canShrink();
        return this;
    }

    /** Runs {@code r} once the serving thread has let this worker go (stopped, faulted or the group ended); set before {@link #start}. */
    public QueueWorker whenGone(Runnable r) {
        if (started) throw new IllegalStateException("set whenGone before the worker starts");
        whenGone = Objects.requireNonNull(r, "r");
        return this;
    }

    public QueueWorker start() {
        started = true;
        try {
            group.join(this);
        } catch (RuntimeException e) {
            started = false;   // in no group: a stop releases the memory it holds
            throw e;
        }
        return this;
    }

    public String name() { return name; }

    /** The wait this worker idles in: its own, or its group's (shared with the group's other members). */
    public DoorbellWait doorbellWait() { return group.doorbellWait(); }

    /** The group serving this worker (a group of one for a worker on a thread of its own). */
    public PollGroup group() { return group; }

    /** The serving thread's kick count for doorbell {@code slot} of the group's wait: {@code n} signals. */
    void kicked(int slot, long n) {
        int[] s = slots;
        if (s == null || n <= 0) return;
        for (int i = 0; i < kickCounts.length && i < s.length; i++) {   // readables (after the doorbells) count no kicks
            if (s[i] == slot) {
                QueueCounters c = kickCounts[i];
                if (c != null) c.kicked(n);
                return;
            }
        }
    }

    /** The group's thread woke and found this worker's ring with work its doorbell had not rung for. */
    void sleptWithWork() {
        lateWakeups++;
        for (QueueCounters c : kickCounts) {
            if (c != null) {
                c.lateWakeup();   // the queue of its first doorbell: a worker of several cannot tell which had the work
                return;
            }
        }
    }

    /** Wake-ups that found this worker with work and its doorbells silent (see {@link QueueCounters#lateWakeup()}). */
    public long lateWakeups() { return lateWakeups; }

    /** The group's thread found this worker asked to park: it no longer touches the rings. */
    void parkedByGroup() {
        if (parked) return;
        synchronized (parkLock) {
            if (quiesceRequested) {
                parked = true;
                parkLock.notifyAll();
            }
        }
    }

    /** The group let this worker go (stopped, faulted, or the group ended): it touches no ring any more. */
    void gone() {
        // The group's thread let it go after its last batch: it touches no ring after this. Released before a stop()
        // waiting for `gone` may return, so that the connector closing the memory next is its last holder.
        memoryHold.release();
        try {
            whenGone.run();   // before a stop() waiting for `gone` may return, as the memory's release: its caller may rely on it
        } finally {
            synchronized (parkLock) {
                gone = true;
                parked = true;
                parkLock.notifyAll();
            }
            if (ownGroup) group.close();
        }
    }

    /** {@link #quiesce(Duration)} within {@link #WAIT_BOUND}. */
    public boolean quiesce() {
        return quiesce(WAIT_BOUND);
    }

    /**
     * Finishes the current batch and parks.
     *
     * @return true once the worker no longer touches the rings; false if it did not park within
     *         {@code bound} (stuck in a call inside its batch; logged): it parks when that call
     *         returns, and the caller must treat the queue state as unstable
     */
    public boolean quiesce(Duration bound) {
        if (group.isGroupThread()) throw new IllegalStateException("a worker cannot quiesce itself");
        quiesceRequested = true;
        group.attention();
        long deadline = System.nanoTime() + bound.toNanos();
        boolean interrupted = false;
        try {
            synchronized (parkLock) {
                while (!parked && !gone && started) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        LOG.warning(() -> "worker " + name + " did not park within " + bound.toMillis()
                                + " ms (stuck in a call inside its batch); the quiesce fails, the worker parks when the call returns");
                        return false;
                    }
                    try {
                        parkLock.wait(Math.max(1, Math.min(100, left / 1_000_000)));
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                return true;
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    public void resume() {
        synchronized (parkLock) {
            quiesceRequested = false;
            if (!gone) parked = false;   // here, not on the group's thread: a quiesce right after must wait for a new park
            parkLock.notifyAll();
        }
        group.attention();
    }

    /** {@link #stop(Duration)} within {@link #WAIT_BOUND}. */
    @Override
    public void close() {
        stop(WAIT_BOUND);
    }

    /**
     * Stops the worker. From another thread it waits until the worker has left the rings, at most
     * {@code bound}; from the serving thread itself (a fault handler resetting the device) it only asks it to stop.
     * Either way its doorbells leave the wait at once, so the connector may close them when this returns.
     *
     * @return false if the worker was still inside a batch after {@code bound} (stuck in a call; logged): it is
     *         left behind, stops when that call returns, and its service must not touch a ring again once its
     *         run is over
     */
    public boolean stop(Duration bound) {
        synchronized (this) {            // against the group taking it in at this moment (PollGroup.admit)
            stop = true;
        }
        group.detach(this);
        resume();
        if (!started) memoryHold.release();   // never started: nothing of it touches memory
        if (ownGroup) group.close();
        if (group.isGroupThread() || !started) return true;
        long deadline = System.nanoTime() + bound.toNanos();
        boolean interrupted = false;
        synchronized (parkLock) {
            while (!gone) {
                long left = deadline - System.nanoTime();
                if (left <= 0) break;
                try {
                    parkLock.wait(Math.max(1, Math.min(100, left / 1_000_000)));
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        boolean done = gone && (!ownGroup || group.awaitEnd(Duration.ofNanos(Math.max(1, deadline - System.nanoTime()))));
        if (interrupted) Thread.currentThread().interrupt();
        if (!done) LOG.warning(() -> "worker " + name + " did not stop within " + bound.toMillis()
                + " ms (stuck in a call inside its batch); left behind: it exits when the call returns, touching no ring of a later run");
        return done;
    }

    /**
     * True while the worker may still touch its rings: started and not yet let go (after {@link #stop} returned
     * false: a worker left behind). A worker on a thread of its own: while that thread runs.
     */
    public boolean isAlive() {
        return ownGroup ? group.isAlive() : started && !gone;
    }

    @Override
    public String toString() {
        return "QueueWorker[" + name + (ownGroup ? "" : " in " + group.name()) + "]";
    }
}
