package dev.jvbus.core.doorbell;

import java.util.concurrent.TimeUnit;

/**
 * How long a waiter spins on its ring before it arms its doorbells and sleeps: fixed, or adapted to how fast the
 * ring is fed, after KVM's halt polling ({@code virt/kvm/kvm_main.c}: {@code grow_halt_poll_ns},
 * {@code shrink_halt_poll_ns}; the guest's cpuidle-haltpoll governor drops to 0 the same way).
 *
 * <p>Why adapt: a spin pays only when work arrives before it ends. A ring fed faster than a sleep/wake cycle (a
 * 64-byte packet stream: buffers microseconds apart) is caught by spinning, with the producer's doorbell kept
 * quiet. A ring fed slower (a guest's TCP stream under TCG: a 48 KB super-frame every ~400 us) never is: each
 * spin burns up to the whole budget on a core these 2-core machines share with the vCPU that feeds the ring, and
 * the producer kicks anyway. So after each wait, with {@code waited} the time from the wait's start to the work
 * (or doorbell) that ended it:
 * <ul>
 *   <li>caught: found by the spin, or by the re-check when arming right after it: the budget was enough; it
 *       stays, or, if it was 0 (work was there again at once: a busy ring), it grows;</li>
 *   <li>found after the spin, within {@code max}: a longer spin would have caught it; it grows (doubles, starting
 *       at {@link #GROW_START_NANOS}, at most {@code max});</li>
 *   <li>found after more than {@code max}: no spin we allow would have caught it; it shrinks (halves, and below
 *       the grow start goes to 0: the waiter then arms and sleeps at once).</li>
 * </ul>
 * A wait that a wake-up, a close or a timeout ended says nothing about the ring and changes nothing.
 *
 * <p>One waiting thread calls {@link #afterWait}; others may read {@link #nanos()} and the counters racily (metrics,
 * tests). No allocation, no lock.
 */
public final class SpinBudget {
    /** The first non-zero budget of a growing spin (KVM's {@code halt_poll_ns_grow_start}: 10 us). */
    public static final long GROW_START_NANOS = TimeUnit.MICROSECONDS.toNanos(10);

    private final long max;
    private final long growStart;
    private final boolean adaptive;
    private volatile long nanos;
    private volatile long grows, shrinks;   // written by the waiting thread only

    private SpinBudget(long max, boolean adaptive, long initial) {
        if (max < 0) throw new IllegalArgumentException("spin budget must not be negative: " + max);
        this.max = max;
        this.adaptive = adaptive;
        this.growStart = Math.min(GROW_START_NANOS, max);
        this.nanos = initial;
    }

    /** Always {@code nanos}. */
    public static SpinBudget fixed(long nanos) {
        return new SpinBudget(nanos, false, nanos);
    }

    /**
     * Between 0 and {@code maxNanos}, as the ring's pace says; it starts at 0, as KVM's does (a ring that turns out
     * busy earns its spin within a few waits, each of which is then shorter than a wake-up anyway).
     */
    public static SpinBudget adaptive(long maxNanos) {
        return new SpinBudget(maxNanos, true, 0);
    }

    /** The current budget: how long the next wait spins before arming and sleeping. */
    public long nanos() { return nanos; }

    /** The most it may spin. */
    public long max() { return max; }

    public boolean isAdaptive() { return adaptive; }

    /** Times the budget grew / shrank (racy reads). */
    public long grows() { return grows; }

    public long shrinks() { return shrinks; }

    /**
     * After a wait that work or a doorbell ended, {@code waitedNanos} after it began.
     *
     * @param caught the spin found the work, or the arm's re-check right after it did (no sleep)
     */
    public void afterWait(long waitedNanos, boolean caught) {
        if (!adaptive) return;
        long now = nanos;
        if (caught && now > 0) return;
        if (caught || waitedNanos <= max) {
            if (now < max) {
                nanos = Math.min(max, Math.max(growStart, now * 2));
                grows++;
            }
        } else if (now > 0) {
            long half = now / 2;
            nanos = half < growStart ? 0 : half;
            shrinks++;
        }
    }

    @Override
    public String toString() {
        return adaptive ? "adaptive spin " + nanos + " ns of at most " + max : "fixed spin " + nanos + " ns";
    }
}
