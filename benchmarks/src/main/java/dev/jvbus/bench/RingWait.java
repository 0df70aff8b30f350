package dev.jvbus.bench;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.sys.EventFd;
import java.util.function.BooleanSupplier;

/**
 * How one side of a ring transport waits for work, by {@link WaitMode}, the same for both
 * rings and both sides. SPIN spins on the ring and never arms a doorbell. ADAPTIVE spins with
 * notifications still suppressed for {@link RingMemory#SPIN_NANOS}, then arms the other side's
 * notifications, looks once more, sleeps on the eventfd ({@link DoorbellWait}) and suppresses them again.
 * What differs per ring and side (the work test, how to arm and disarm) comes in as functions made once,
 * so a wait allocates nothing.
 */
final class RingWait implements AutoCloseable {
    private final boolean spin;
    private final DoorbellWait waiter;
    private final BooleanSupplier work;
    private final BooleanSupplier enable;
    private final Runnable disarm;
    private final BooleanSupplier woken;

    /**
     * @param bell   the eventfd the other side rings
     * @param work   whether work has come (the spin condition)
     * @param enable enables notifications and looks once more: true if work or a signal came meanwhile,
     *               so it must not sleep (the wait disarms again and returns)
     * @param disarm suppresses notifications
     * @param woken  the condition the sleep waits for
     */
    RingWait(WaitMode mode, EventFd bell, BooleanSupplier work, BooleanSupplier enable, Runnable disarm,
             BooleanSupplier woken) {
        this.spin = mode == WaitMode.SPIN;
        this.waiter = spin ? null : new DoorbellWait(DoorbellWait.Mode.ADAPTIVE, 0);
        if (waiter != null) waiter.add(bell);
        this.work = work;
        this.enable = enable;
        this.disarm = disarm;
        this.woken = woken;
        disarm.run();   // suppressed while running; armed only to sleep
    }

    /** Returns once work may be there; the caller looks. Never sleeps while {@code work} says yes. */
    void await() {
        if (spin) {
            while (!work.getAsBoolean()) Thread.onSpinWait();
            return;
        }
        if (spinFor(work)) return;
        if (!enable.getAsBoolean()) waiter.await(woken);
        disarm.run();
    }

    /** The adaptive mode's bounded spin, notifications still suppressed: true if work came. */
    static boolean spinFor(BooleanSupplier work) {
        long start = System.nanoTime();
        while (true) {
            for (int i = 0; i < 64; i++) {
                if (work.getAsBoolean()) return true;
                Thread.onSpinWait();
            }
            if (System.nanoTime() - start >= RingMemory.SPIN_NANOS) return false;
        }
    }

    @Override
    public void close() {
        if (waiter != null) waiter.close();
    }
}
