package dev.jvbus.core.ring;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.doorbell.SpinBudget;
import dev.jvbus.core.sys.EventFd;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * One thread serving a device's queues: poll while there is work, then arm the doorbells, re-check,
 * and wait (spin for as long as its {@link SpinBudget} says the ring's pace pays for, then sleep in
 * epoll) — the loop {@link DoorbellWait} documents. It can be
 * quiesced for a save (it finishes its batch and parks, the rings untouched) and resumed.
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
 */
public final class QueueWorker implements AutoCloseable {
    /** How long {@link #quiesce()} and {@link #close()} wait for the worker: a batch takes microseconds. */
    public static final Duration WAIT_BOUND = Duration.ofSeconds(5);
    private static final Logger LOG = Logger.getLogger(QueueWorker.class.getName());
    private final String name;
    private final QueueService service;
    private final DoorbellWait wait;
    private final Consumer<QueueFault> onFault;
    private final int queue;
    private final Thread thread;
    /** Per doorbell (by its index in the wait), the counters its kicks go to, or null: the worker's thread writes them. */
    private final QueueCounters[] kickCounts;

    private volatile boolean stop;
    private volatile boolean quiesceRequested;
    private volatile boolean parked;
    private final Object parkLock = new Object();
    // What ends the spin phase of a wait: made once, not per wait (the worker waits at every idle moment).
    private final java.util.function.BooleanSupplier wakeCondition;
    private final java.util.function.BooleanSupplier armCondition;

    /**
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
        if (kickCounts != null && kickCounts.size() != doorbells.size())
            throw new IllegalArgumentException(kickCounts.size() + " kick counters for " + doorbells.size() + " doorbells");
        this.kickCounts = new QueueCounters[doorbells.size()];
        if (kickCounts != null) for (int i = 0; i < this.kickCounts.length; i++) this.kickCounts[i] = kickCounts.get(i);
        this.name = name;
        this.queue = queue;
        this.service = service;
        this.onFault = onFault;
        // The spin adapts to the ring's pace (SpinBudget says why): a queue fed slower than a wake-up is not spun on.
        this.wait = new DoorbellWait(mode, SpinBudget.adaptive(DoorbellWait.DEFAULT_SPIN_NANOS));
        for (EventFd d : doorbells) wait.add(d);
        this.wakeCondition = () -> service.hasWork() || stop || quiesceRequested;
        this.armCondition = service::armDoorbell;
        this.thread = Thread.ofPlatform().name(name).daemon().unstarted(this::run);
    }

    public QueueWorker start() {
        thread.start();
        return this;
    }

    public String name() { return name; }

    public DoorbellWait doorbellWait() { return wait; }

    private void run() {
        try {
            while (!stop) {
                if (quiesceRequested) {
                    parkUntilResumed();
                    continue;
                }
                if (service.poll()) continue;
                // Asked to park or stop during the poll (which can be long: a delivery into a wedged
                // device): go round without arming, so a worker left behind writes nothing to a ring.
                if (stop || quiesceRequested) continue;
                // Spin with the doorbell disarmed, arm it (and re-check) only before sleeping: a busy driver
                // then never kicks for buffers the spin picks up anyway.
                DoorbellWait.Outcome o = wait.await(wakeCondition, armCondition);
                service.disarmDoorbell();
                if (o == DoorbellWait.Outcome.DOORBELL) countKicks();
                if (o == DoorbellWait.Outcome.CLOSED) break;
            }
        } catch (QueueFault f) {
            onFault.accept(f);
        } catch (RuntimeException | Error e) {
            onFault.accept(new QueueFault(queue, QueueFault.Reason.BAD_DESCRIPTOR, "worker " + name + " failed: " + e));
        } finally {
            synchronized (parkLock) {
                parked = true;
                parkLock.notifyAll();
            }
        }
    }

    /** Adds what each fired doorbell held to its queue's kicks (once per wake, not per buffer). */
    private void countKicks() {
        for (int i = wait.nextFired(0); i >= 0 && i < kickCounts.length; i = wait.nextFired(i + 1)) {
            QueueCounters c = kickCounts[i];
            long n = wait.drained(i);
            if (c != null && n > 0) c.kicked(n);
        }
    }

    private void parkUntilResumed() {
        synchronized (parkLock) {
            parked = true;
            parkLock.notifyAll();
            while (quiesceRequested && !stop) {
                try {
                    parkLock.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            parked = false;
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
        if (Thread.currentThread() == thread) throw new IllegalStateException("a worker cannot quiesce itself");
        quiesceRequested = true;
        wait.wakeup();
        long deadline = System.nanoTime() + bound.toNanos();
        boolean interrupted = false;
        try {
            synchronized (parkLock) {
                while (!parked && thread.isAlive()) {
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
            parkLock.notifyAll();
        }
    }

    /** {@link #stop(Duration)} within {@link #WAIT_BOUND}. */
    @Override
    public void close() {
        stop(WAIT_BOUND);
    }

    /**
     * Stops the worker. From another thread it waits until the thread has left the rings, at most
     * {@code bound}; from the worker itself (a fault handler resetting the device) it only asks it to stop.
     *
     * @return false if the thread was still running after {@code bound} (stuck in a call inside its
     *         batch; logged): it is left behind, stops when that call returns, and its service must
     *         not touch a ring again once its run is over
     */
    public boolean stop(Duration bound) {
        stop = true;
        resume();
        wait.close();
        if (Thread.currentThread() == thread) return true;
        boolean interrupted = false;
        long deadline = System.nanoTime() + bound.toNanos();
        while (thread.isAlive()) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                LOG.warning(() -> "worker " + name + " did not stop within " + bound.toMillis()
                        + " ms (stuck in a call inside its batch); left behind: it exits when the call returns, touching no ring of a later run");
                break;
            }
            try {
                thread.join(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
        return !thread.isAlive();
    }

    /** True while the worker's thread runs (after {@link #stop} returned false: a worker left behind). */
    public boolean isAlive() {
        return thread.isAlive();
    }
}
