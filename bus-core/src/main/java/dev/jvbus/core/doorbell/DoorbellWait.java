package dev.jvbus.core.doorbell;

import dev.jvbus.core.sys.Epoll;
import dev.jvbus.core.sys.EventFd;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * How a device worker idles between bursts of work: it spins for a bounded time checking the
 * ring, then sleeps in epoll until one of its doorbells rings.
 *
 * <p>Why both: on a busy queue the next buffer usually arrives within microseconds, and catching
 * it by spinning costs no syscall and lets the producer keep its doorbell suppressed. But these
 * machines have two shared cores; a waiter that only spins takes a core from the producer as soon
 * as a third process runs, and throughput collapses. So {@link Mode#ADAPTIVE} (the default) spins
 * for its {@link SpinBudget} and then sleeps; {@link Mode#PURE_SPIN} never sleeps (for
 * benchmarks that compare the two, and for dedicated cores). The budget is fixed
 * ({@link #DEFAULT_SPIN_NANOS} by default) or adapts to the ring's pace ({@link SpinBudget#adaptive}:
 * device workers take that one, so a ring fed slower than a wake-up is not spun on at all).
 *
 * <h2>Contract with the caller (the lost-wakeup dance is yours)</h2>
 * A doorbell only wakes a sleeping worker if the producer rang it, and a producer only rings it
 * when the ring says notifications are enabled. So the worker loop must be:
 * <pre>{@code
 * while (true) {
 *     drainRing();                              // pop until empty, notifications disabled
 *     ring.enableNotifications();               // clear NO_NOTIFY / publish avail_event / shm-signal enable
 *     if (ring.hasWork()) {                     // re-check AFTER enabling: the ring does the full fence
 *         ring.disableNotifications();          // a buffer slipped in between; no need to sleep
 *         continue;
 *     }
 *     if (wait.await(ring::hasWork) == Outcome.CLOSED) break;
 *     ring.disableNotifications();
 * }
 * }</pre>
 * Any buffer published after the re-check rings a doorbell (notifications are on), and an eventfd
 * remembers a signal until it is drained, so the sleep cannot miss it. {@code await} may return
 * without work (a doorbell left over from an earlier burst, a {@link #wakeup()}); the caller always
 * re-checks the ring. {@code workAvailable} is called only while spinning, from the waiting thread;
 * it must be cheap and side-effect free (one acquire load of the ring index, typically).
 *
 * <h2>Threads and cost</h2>
 * One thread waits ({@link #await}); any thread may {@link #wakeup()} or {@link #close()}. No lock
 * and no allocation per wait; each wait costs two atomic updates (to know who closes the fds).
 * Doorbells are registered before the worker starts, or from the waiting thread between waits;
 * {@link #remove} from any thread.
 * The waiter does not own the doorbells: closing it leaves them open.
 */
public final class DoorbellWait implements AutoCloseable {
    /** Spin budget of the adaptive mode: about one busy queue's inter-arrival time, far below a sleep/wake cycle. */
    public static final long DEFAULT_SPIN_NANOS = TimeUnit.MICROSECONDS.toNanos(50);
    /** A wait that never times out. */
    public static final long FOREVER = -1;

    public enum Mode {
        /** Spin for the spin budget, then sleep in epoll_wait until a doorbell, a wakeup or the timeout. */
        ADAPTIVE,
        /** Spin until work, a wakeup, close or the timeout; never sleeps and never drains a doorbell. */
        PURE_SPIN
    }

    public enum Outcome {
        /** {@code workAvailable} answered true while spinning; no doorbell was drained. */
        WORK,
        /** Slept and one or more doorbells rang (and were drained): see {@link #fired(int)}. */
        DOORBELL,
        /** The timeout passed with no work and no doorbell. */
        TIMED_OUT,
        /** {@link #wakeup()} was called. */
        WOKEN,
        /** {@link #close()} was called; every later await returns this at once. */
        CLOSED
    }

    /** Where the waiting thread is, for observers (tests, metrics): it changes at most twice per wait. */
    public enum Phase { IDLE, SPINNING, SLEEPING }

    private static final long WAKE_TOKEN = -1;
    private static final int MAX_DOORBELLS = 1024;

    private final Mode mode;
    private final SpinBudget budget;
    private final Epoll epoll;
    private final EventFd wake = EventFd.create();
    /** An {@link EventFd} (drained when it rings) or another fd added with {@link #addReadable} (never read here). */
    private final dev.jvbus.core.sys.Pollable[] doorbells = new dev.jvbus.core.sys.Pollable[MAX_DOORBELLS];
    /** Per index: added with {@link #addReadable} (the waiter reads it; never drained here). */
    private final boolean[] readable = new boolean[MAX_DOORBELLS];
    private int doorbellCount;
    private final long[] fired = new long[MAX_DOORBELLS / 64];
    private final long[] drained = new long[MAX_DOORBELLS];   // signals each fired doorbell held, in the last wait

    private volatile boolean closed;
    private volatile boolean woken;
    private volatile Phase phase = Phase.IDLE;
    // Who may touch the fds: 1 for the owner until close, +1 for a waiter inside await or a thread
    // inside wakeup. The last one out closes epoll and the wake eventfd, so close() from another
    // thread never pulls an fd from under a thread that is in epoll_wait or writing the wake fd.
    private final AtomicInteger users = new AtomicInteger(1);

    // Plain counters, written by the waiting thread only, read racily by metrics.
    private long spinHits;
    private long armHits;
    private long sleeps;
    private long doorbellWakes;
    private long waitedNanos;

    /** Spinning a fixed {@code spinNanos} (in {@link Mode#ADAPTIVE}) before sleeping. */
    public DoorbellWait(Mode mode, long spinNanos) {
        this(mode, SpinBudget.fixed(spinNanos));
    }

    /** Spinning as {@code budget} says (in {@link Mode#ADAPTIVE}) before sleeping; this waiter tells it how each wait went. */
    public DoorbellWait(Mode mode, SpinBudget budget) {
        this.mode = mode;
        this.budget = java.util.Objects.requireNonNull(budget, "budget");
        this.epoll = Epoll.create(64);
        epoll.add(wake, Epoll.IN, WAKE_TOKEN);
    }

    /** The default: adaptive, spinning {@link #DEFAULT_SPIN_NANOS} before sleeping. */
    public DoorbellWait() {
        this(Mode.ADAPTIVE, DEFAULT_SPIN_NANOS);
    }

    /**
     * Registers a doorbell and returns its index in the fired set (the lowest free one: an index
     * {@link #remove}d before is taken again). Call before the worker starts waiting, or from the
     * waiting thread itself.
     */
    public int add(EventFd doorbell) {
        return register(doorbell, false);
    }

    /**
     * Registers an fd that wakes the sleeper while it is readable, level-triggered, and that this wait never reads:
     * a TAP whose frames the waiter's own work reads (its drain is what makes it quiet again). When it wakes a
     * sleep it counts as fired with {@link #drained} 1. Same rules as {@link #add}.
     */
    public int addReadable(dev.jvbus.core.sys.Pollable fd) {
        return register(fd, true);
    }

    private int register(dev.jvbus.core.sys.Pollable doorbell, boolean readOnly) {
        synchronized (doorbells) {
            int index = 0;
            while (index < doorbellCount && doorbells[index] != null) index++;
            if (index == MAX_DOORBELLS) throw new IllegalStateException("at most " + MAX_DOORBELLS + " doorbells per waiter");
            epoll.add(doorbell, Epoll.IN, index);
            readable[index] = readOnly;
            doorbells[index] = doorbell;
            if (index == doorbellCount) doorbellCount = index + 1;
            return index;
        }
    }

    /**
     * Takes doorbell {@code index} out of the wait: it no longer wakes a sleeper, and its index is free for
     * the next {@link #add}. Any thread, idempotent, while the doorbell's fd is still open (so a poll group
     * can let a queue go before the connector closes its kick fd, even with the waiting thread stuck
     * elsewhere). A wait that already took its signal from epoll drains it once more, harmlessly.
     */
    public void remove(int index) {
        synchronized (doorbells) {
            dev.jvbus.core.sys.Pollable d = doorbells[index];
            if (d == null) return;
            doorbells[index] = null;
            try {
                epoll.remove(d);
            } catch (RuntimeException e) {
                // The epoll is closed (the waiter went away) or the fd with it: nothing left registered.
            }
        }
    }

    /** Waits with no timeout; see {@link #await(BooleanSupplier, long)}. */
    public Outcome await(BooleanSupplier workAvailable) {
        return await(workAvailable, FOREVER);
    }

    /**
     * Spins (checking {@code workAvailable}) up to the spin budget, then, in {@link Mode#ADAPTIVE},
     * sleeps until a doorbell rings. Clears the fired set on entry; after {@link Outcome#DOORBELL}
     * it holds the doorbells that rang, already drained.
     *
     * @param timeoutNanos how long to wait in all, spin included; {@link #FOREVER} for no limit
     */
    public Outcome await(BooleanSupplier workAvailable, long timeoutNanos) {
        return await(workAvailable, null, timeoutNanos);
    }

    /**
     * The wait a busy device worker wants: spin up to the budget with the doorbell still <em>disarmed</em>,
     * and arm it only when about to sleep. {@code arm} enables the producer's notifications and re-checks
     * the ring after its fence (the {@link dev.jvbus.core.ring.QueueService#armDoorbell} contract: true if
     * work may have arrived, so do not sleep); this sleeps only if it answered false.
     *
     * <p>Why: a producer checks for "notifications enabled" at every batch it publishes. Armed during the
     * spin, it rings the doorbell (a syscall on its side, an eventfd to drain on ours) for batches the
     * spinning worker would have found anyway; disarmed, a busy producer never rings (Linux vhost's
     * busy poll and the shm-signal pattern in {@link dev.jvbus.core.ring.ioq.ShmSignal} do the same). The
     * caller disarms after every return, as after {@link #await(BooleanSupplier, long)}.
     *
     * @return as {@link #await(BooleanSupplier, long)}; {@link Outcome#WORK} also when {@code arm} found work
     */
    public Outcome await(BooleanSupplier workAvailable, BooleanSupplier arm) {
        return await(workAvailable, java.util.Objects.requireNonNull(arm, "arm"), FOREVER);
    }

    /**
     * The one shape of a wait: spin, then (with {@code arm}, if it finds nothing) sleep, for {@code timeoutNanos}
     * in all ({@link #FOREVER}: no limit). {@code arm} may be null (then as {@link #await(BooleanSupplier, long)}).
     */
    public Outcome await(BooleanSupplier workAvailable, BooleanSupplier arm, long timeoutNanos) {
        if (!enter()) return Outcome.CLOSED;
        long start = System.nanoTime();
        Outcome o = null;
        boolean caught = true;   // by the spin, or by the arm's re-check right after it
        try {
            java.util.Arrays.fill(fired, 0, (doorbellCount + 63) >>> 6, 0L);
            o = spin(workAvailable, start, timeoutNanos);
            if (o == null && arm != null && arm.getAsBoolean()) {   // work slipped in before the doorbell was armed
                armHits++;
                o = Outcome.WORK;   // there when the spin ended: caught, as by the spin
            }
            if (o == null) {
                caught = false;
                o = sleep(start, timeoutNanos);
            }
            return o;
        } finally {
            phase = Phase.IDLE;
            // One clock read per wait, never per item of work: what the waiter did not spend waiting, it spent working.
            long waited = System.nanoTime() - start;
            waitedNanos += waited;
            learned(o, waited, caught);
            leave();
        }
    }

    /**
     * Tells the budget how the wait went when work or a doorbell ended it (a wake-up, close or timeout says
     * nothing about the ring's pace; a wait that threw, nothing either): caught by the spin (or by the arm's
     * re-check right after it), or after a sleep of so long.
     */
    private void learned(Outcome o, long waited, boolean caught) {
        if (o == Outcome.WORK || o == Outcome.DOORBELL) budget.afterWait(waited, caught);
    }

    /** Returns an outcome if spinning ended the wait, or null to go to sleep. */
    private Outcome spin(BooleanSupplier workAvailable, long start, long timeoutNanos) {
        phase = Phase.SPINNING;
        boolean forever = timeoutNanos < 0;
        long budget = mode == Mode.PURE_SPIN ? Long.MAX_VALUE : this.budget.nanos();
        if (!forever) budget = Math.min(budget, timeoutNanos);
        while (true) {
            if (closed) return Outcome.CLOSED;
            if (woken) {
                woken = false;
                return Outcome.WOKEN;
            }
            if (workAvailable.getAsBoolean()) {
                spinHits++;
                return Outcome.WORK;
            }
            long elapsed = System.nanoTime() - start;
            if (elapsed >= budget) {
                if (mode == Mode.PURE_SPIN || (!forever && elapsed >= timeoutNanos)) return Outcome.TIMED_OUT;
                return null;
            }
            Thread.onSpinWait();
        }
    }

    private Outcome sleep(long start, long timeoutNanos) {
        phase = Phase.SLEEPING;
        sleeps++;
        while (true) {
            int millis;
            if (timeoutNanos < 0) {
                millis = -1;
            } else {
                long left = timeoutNanos - (System.nanoTime() - start);
                if (left <= 0) return Outcome.TIMED_OUT;
                millis = (int) Math.min(Integer.MAX_VALUE, (left + 999_999) / 1_000_000); // round up: never wake early
            }
            // epoll_wait sleeps on our own epoll fd with our timeout, never on a doorbell itself; and
            // drain() never waits either, though a doorbell's description is shared with the peer that
            // may have made it blocking and emptied it between this wakeup and the drain (EventFd
            // reads with RWF_NOWAIT: 0 then, and we sleep again).
            int n = epoll.wait(millis);
            boolean rang = false;
            for (int i = 0; i < n; i++) {
                long token = epoll.token(i);
                if (token == WAKE_TOKEN) {
                    wake.drain();
                } else {
                    int index = (int) token;
                    dev.jvbus.core.sys.Pollable d = doorbells[index];    // null: removed meanwhile (its signal is nobody's now)
                    // an fd added with addReadable is the waiter's to read: it stays readable (level) until it does
                    drained[index] = d == null ? 0 : readable[index] ? 1 : ((EventFd) d).drain();
                    fired[index >>> 6] |= 1L << index;
                    rang = true;
                }
            }
            if (closed) return Outcome.CLOSED;
            if (rang) {
                doorbellWakes++;
                return Outcome.DOORBELL;
            }
            if (woken) {
                woken = false;
                return Outcome.WOKEN;
            }
            // Nothing of ours: the timeout (checked at the top) or a stale wake signal.
        }
    }

    /** True if doorbell {@code index} rang during the last {@link Outcome#DOORBELL} wait. */
    public boolean fired(int index) {
        return (fired[index >>> 6] & (1L << index)) != 0;
    }

    /**
     * How many signals doorbell {@code index} held when the last {@link Outcome#DOORBELL} wait drained it
     * (each kick of a driver is one; unsigned). Meaningful only while {@link #fired(int)} says it rang.
     */
    public long drained(int index) {
        return drained[index];
    }

    /** The first fired doorbell at or after {@code from}, or -1: {@code for (i = nextFired(0); i >= 0; i = nextFired(i + 1))}. */
    public int nextFired(int from) {
        for (int w = from >>> 6; w < (doorbellCount + 63) >>> 6; w++) {
            long bits = fired[w] & (w == from >>> 6 ? -1L << from : -1L);
            if (bits != 0) return (w << 6) + Long.numberOfTrailingZeros(bits);
        }
        return -1;
    }

    /** Makes the current (or, if none, the next) await return {@link Outcome#WOKEN}. Any thread. */
    public void wakeup() {
        if (!enter()) return;
        try {
            woken = true;
            wake.signal();
        } finally {
            leave();
        }
    }

    /**
     * Stops waiting for good: a waiter inside {@link #await} returns {@link Outcome#CLOSED} promptly
     * (from spin or from sleep), and so does every later await. Any thread; idempotent. The epoll
     * and wake fds are released by whichever of this call and the waiter finishes last.
     */
    @Override
    public void close() {
        if (closed) return;
        synchronized (this) { // close is rare; this only keeps two closers from both dropping the owner's share
            if (closed) return;
            closed = true;
            wake.signal(); // still safe: we hold the owner's share
        }
        leave();
    }

    private boolean enter() {
        while (true) {
            int u = users.get();
            if (u == 0 || closed) return false;
            if (users.compareAndSet(u, u + 1)) return true;
        }
    }

    private void leave() {
        if (users.decrementAndGet() == 0) {
            epoll.close();
            wake.close();
        }
    }

    public Mode mode() { return mode; }

    /** The spin budget of the next wait (it changes after each wait when {@link #budget()} adapts). */
    public long spinNanos() { return budget.nanos(); }

    public SpinBudget budget() { return budget; }

    public Phase phase() { return phase; }

    /** Waits that ended in the spin phase with work found (no syscall). */
    public long spinHits() { return spinHits; }

    /** Waits of {@link #await(BooleanSupplier, BooleanSupplier)} that found work when arming, after the spin. */
    public long armHits() { return armHits; }

    /** Waits that went to sleep in epoll. */
    public long sleeps() { return sleeps; }

    /** Sleeps that a doorbell ended. */
    public long doorbellWakes() { return doorbellWakes; }

    /**
     * Nanoseconds spent inside {@link #await} (spinning or asleep), counted when each wait ends. For a thread that
     * only works and waits (a poll group's), wall time minus this is its busy time: whether it or its producers set
     * the pace.
     */
    public long waitedNanos() { return waitedNanos; }
}
