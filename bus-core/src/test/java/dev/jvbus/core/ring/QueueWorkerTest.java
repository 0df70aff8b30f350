package dev.jvbus.core.ring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.StuckDoorbell;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class QueueWorkerTest {

    /** A counter standing in for a ring: the producer bumps "available", the worker consumes. */
    static class CounterService implements QueueService {
        final AtomicLong available = new AtomicLong();
        volatile long consumed;
        volatile boolean armed;
        volatile long failAt = -1;
        /** When set, each batch rings this doorbell after taking its buffers, as a device notifies its driver. */
        volatile StuckDoorbell call;

        @Override public boolean poll() throws QueueFault {
            long a = available.get();
            if (a == consumed) return false;
            if (failAt >= 0 && a >= failAt) throw new QueueFault(3, QueueFault.Reason.CHAIN_LOOP, "at " + a);
            consumed = a;
            StuckDoorbell c = call;
            if (c != null) c.signal();
            return true;
        }

        @Override public boolean hasWork() { return available.get() != consumed; }

        @Override public boolean armDoorbell() { armed = true; return hasWork(); }

        @Override public void disarmDoorbell() { armed = false; }
    }

    private static void produce(CounterService s, EventFd kick, int n) {
        for (int i = 0; i < n; i++) {
            s.available.incrementAndGet();
            if (s.armed) kick.signal();   // the producer rings only when the worker asked for it
        }
    }

    private static void awaitConsumed(CounterService s, long n) throws InterruptedException {
        for (int i = 0; i < 10_000 && s.consumed != n; i++) Thread.sleep(1);
        assertThat(s.consumed).isEqualTo(n);
    }

    @Test
    void servesWorkThatArrivesWhileItSleeps() throws Exception {
        CounterService s = new CounterService();
        try (EventFd kick = EventFd.create();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start()) {
            for (int round = 1; round <= 50; round++) {
                Thread.sleep(1);                        // long enough for the worker to go to sleep sometimes
                produce(s, kick, 100);
                awaitConsumed(s, round * 100L);
            }
            assertThat(w.doorbellWait().sleeps()).as("it slept between bursts").isPositive();
        }
    }

    /**
     * Work that turns up right after a poll found the ring empty is picked up by the spin without the
     * doorbell ever being armed: a busy driver is never asked to kick (a syscall per batch on its side)
     * for buffers the spinning worker takes anyway. Armed before the spin, as the loop did before, it was
     * armed once per poll that came up empty.
     */
    @Test
    void workThatArrivesDuringTheSpinIsTakenWithoutArmingTheDoorbell() throws Exception {
        AtomicLong arms = new AtomicLong();
        AtomicLong polls = new AtomicLong();
        CounterService s = new CounterService() {
            @Override public boolean poll() throws QueueFault {
                boolean did = super.poll();
                // Every empty poll is followed at once by a new buffer: the driver is busy, the worker's spin
                // finds it on its first look. 1000 such polls, then the driver goes quiet.
                if (!did && polls.incrementAndGet() <= 1000) available.incrementAndGet();
                return did;
            }

            @Override public boolean armDoorbell() {
                arms.incrementAndGet();
                return super.armDoorbell();
            }
        };
        try (EventFd kick = EventFd.create();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start()) {
            awaitConsumed(s, 1000);
            assertThat(arms.get()).as("the doorbell was armed only when the driver went quiet").isLessThanOrEqualTo(1);
            produce(s, kick, 1);          // and a quiet worker still sleeps armed and wakes to a kick
            awaitConsumed(s, 1001);
        }
    }

    /**
     * The spin adapts to the queue's pace (SpinBudget): a queue whose driver publishes again as soon as the worker
     * looks earns a spin; one fed slower than the spin's maximum (a TCG guest's super-frames, ~400 us apart) loses it
     * and the worker arms and sleeps at once, leaving the core to whoever feeds it. With the fixed 50 us spin the
     * budget never reached 0.
     */
    @Test
    void theSpinGrowsOnAQueueFedAtOnceAndShrinksToZeroOnOneFedSlowerThanItsMaximum() throws Exception {
        AtomicLong fast = new AtomicLong(1);      // non-zero: the driver publishes whenever the worker arms
        CounterService s = new CounterService() {
            @Override public boolean armDoorbell() {
                if (fast.get() != 0) available.incrementAndGet();
                return super.armDoorbell();
            }
        };
        try (EventFd kick = EventFd.create();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start()) {
            DoorbellWait wait = w.doorbellWait();
            awaitSpin(wait, true);
            fast.set(0);
            // Slow: each buffer comes a millisecond (20 times the maximum spin) after the worker went to sleep.
            long produced = s.available.get();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (wait.spinNanos() != 0 && System.nanoTime() < deadline) {
                awaitConsumed(s, produced);
                awaitSleeping(wait);
                Thread.sleep(1);
                produce(s, kick, 1);
                produced++;
            }
            assertThat(wait.spinNanos()).as("a queue fed slower than the spin's maximum is not spun on").isZero();
            fast.set(1);
            produce(s, kick, 1);
            awaitSpin(wait, true);
        }
    }

    private static void awaitSleeping(DoorbellWait wait) throws InterruptedException {
        for (int i = 0; i < 10_000 && wait.phase() != DoorbellWait.Phase.SLEEPING; i++) Thread.sleep(1);
        assertThat(wait.phase()).isEqualTo(DoorbellWait.Phase.SLEEPING);
    }

    private static void awaitSpin(DoorbellWait wait, boolean positive) throws InterruptedException {
        for (int i = 0; i < 10_000 && (wait.spinNanos() > 0) != positive; i++) Thread.sleep(1);
        assertThat(wait.spinNanos() > 0).as("spin budget %d ns", wait.spinNanos()).isEqualTo(positive);
    }

    @Test
    void quiesceParksTheWorkerAndResumeCarriesOn() throws Exception {
        CounterService s = new CounterService();
        try (EventFd kick = EventFd.create();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start()) {
            produce(s, kick, 10);
            awaitConsumed(s, 10);
            w.quiesce();
            produce(s, kick, 10);
            Thread.sleep(50);
            assertThat(s.consumed).as("a quiesced worker does not touch the ring").isEqualTo(10);
            w.resume();
            kick.signal();
            awaitConsumed(s, 20);
        }
    }

    @Test
    void aRingFaultStopsTheWorkerAndIsReported() throws Exception {
        CounterService s = new CounterService();
        s.failAt = 5;
        CompletableFuture<QueueFault> reported = new CompletableFuture<>();
        try (EventFd kick = EventFd.create();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, reported::complete).start()) {
            produce(s, kick, 5);
            QueueFault f = reported.get(10, TimeUnit.SECONDS);
            assertThat(f.queue()).isEqualTo(3);
            assertThat(f.reason()).isEqualTo(QueueFault.Reason.CHAIN_LOOP);
        }
    }

    @Test
    void closeStopsASleepingWorker() throws Exception {
        CounterService s = new CounterService();
        EventFd kick = EventFd.create();
        QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start();
        // Asleep for sure, not merely started: on a busy machine 20 ms did not promise that.
        for (int i = 0; i < 10_000 && w.doorbellWait().phase() != DoorbellWait.Phase.SLEEPING; i++) Thread.sleep(1);
        assertThat(w.doorbellWait().phase()).as("the worker went to sleep").isEqualTo(DoorbellWait.Phase.SLEEPING);
        w.close();
        produce(s, kick, 3);
        Thread.sleep(20);
        assertThat(s.consumed).isZero();
        kick.close();
    }

    @Test
    void quiesceGivesUpAfterItsBoundOnAWorkerStuckInABatchAndTheWorkerParksWhenItReturns() throws Exception {
        CounterService s = new CounterService();
        try (EventFd kick = EventFd.create(); StuckDoorbell call = new StuckDoorbell();
             QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start()) {
            s.call = call;
            produce(s, kick, 1);
            assertThat(call.awaitStuck(Duration.ofSeconds(20))).as("the worker is stuck in its doorbell").isTrue();

            CompletableFuture<Boolean> quiesced = CompletableFuture.supplyAsync(() -> w.quiesce(Duration.ofMillis(300)));
            assertThat(quiesced.get(30, TimeUnit.SECONDS)).as("quiesce reports that the worker did not park").isFalse();

            call.release();
            assertThat(w.quiesce(Duration.ofSeconds(20))).as("back from the call, the worker parks").isTrue();
            produce(s, kick, 1);
            Thread.sleep(20);
            assertThat(s.consumed).as("a parked worker does not touch the ring").isEqualTo(1);
        }
    }

    @Test
    void stopLeavesAWorkerStuckInABatchBehindAfterItsBoundAndItExitsWhenItsCallReturns() throws Exception {
        CounterService s = new CounterService();
        try (EventFd kick = EventFd.create(); StuckDoorbell call = new StuckDoorbell()) {
            QueueWorker w = new QueueWorker("t", 0, s, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { }).start();
            s.call = call;
            produce(s, kick, 1);
            assertThat(call.awaitStuck(Duration.ofSeconds(20))).as("the worker is stuck in its doorbell").isTrue();

            CompletableFuture<Boolean> stopped = CompletableFuture.supplyAsync(() -> w.stop(Duration.ofMillis(300)));
            assertThat(stopped.get(30, TimeUnit.SECONDS)).as("stop reports the worker left behind").isFalse();
            assertThat(w.isAlive()).isTrue();

            call.release();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (w.isAlive() && System.nanoTime() < deadline) Thread.sleep(5);
            assertThat(w.isAlive()).as("back from the call, the worker sees stop and exits").isFalse();
            produce(s, kick, 1);
            Thread.sleep(20);
            assertThat(s.consumed).isEqualTo(1);
        }
    }
}
