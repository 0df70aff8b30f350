package dev.jvbus.core.doorbell;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.DoorbellWait.Mode;
import dev.jvbus.core.doorbell.DoorbellWait.Outcome;
import dev.jvbus.core.doorbell.DoorbellWait.Phase;
import dev.jvbus.core.sys.EventFd;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, unit = TimeUnit.SECONDS) // a hang guard only; no test asserts on time
class DoorbellWaitTest {
    private static final long ONE_MS = TimeUnit.MILLISECONDS.toNanos(1);

    @Test
    void noSignalAndAShortTimeoutReturnsTimedOut() {
        try (DoorbellWait adaptive = new DoorbellWait(); DoorbellWait spin = new DoorbellWait(Mode.PURE_SPIN, 0);
                EventFd bell = EventFd.create()) {
            adaptive.add(bell);
            spin.add(bell);
            assertThat(adaptive.await(() -> false, ONE_MS)).isEqualTo(Outcome.TIMED_OUT);
            assertThat(spin.await(() -> false, ONE_MS)).isEqualTo(Outcome.TIMED_OUT);
            assertThat(spin.sleeps()).as("pure spin never sleeps").isZero();
            assertThat(adaptive.await(() -> false, 0)).as("zero timeout is a poll").isEqualTo(Outcome.TIMED_OUT);
        }
    }

    @Test
    void theTimeInsideEachWaitIsCountedWhenItEnds() {
        long timeout = TimeUnit.MILLISECONDS.toNanos(20);
        try (DoorbellWait wait = new DoorbellWait(); EventFd bell = EventFd.create()) {
            wait.add(bell);
            assertThat(wait.waitedNanos()).isZero();
            // A wait that times out lasted at least its timeout (sleeps round up, never wake early): lower bounds only.
            assertThat(wait.await(() -> false, timeout)).isEqualTo(Outcome.TIMED_OUT);
            long first = wait.waitedNanos();
            assertThat(first).isGreaterThanOrEqualTo(timeout);
            assertThat(wait.await(() -> false, timeout)).isEqualTo(Outcome.TIMED_OUT);
            assertThat(wait.waitedNanos() - first).as("each wait adds its own time").isGreaterThanOrEqualTo(timeout);
            long before = wait.waitedNanos();
            assertThat(wait.await(() -> true, timeout)).isEqualTo(Outcome.WORK);
            assertThat(wait.waitedNanos()).as("a wait that found work at once adds what it took, and never less than 0")
                    .isGreaterThanOrEqualTo(before);
        }
    }

    @Test
    void workSeenWhileSpinningReturnsWithoutSleeping() {
        try (DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, TimeUnit.SECONDS.toNanos(60))) {
            AtomicLong published = new AtomicLong();
            Thread producer = Thread.ofPlatform().start(() -> published.set(1));
            assertThat(wait.await(() -> published.get() != 0)).isEqualTo(Outcome.WORK);
            assertThat(wait.spinHits()).isEqualTo(1);
            assertThat(wait.sleeps()).isZero();
            producer.interrupt();
        }
    }

    @Test
    void theDoorbellIsArmedOnlyAfterTheSpinFoundNothingAndWorkFoundWhenArmingSkipsTheSleep() throws Exception {
        try (DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, 0); EventFd bell = EventFd.create()) {
            wait.add(bell);
            AtomicLong arms = new AtomicLong();
            // Work at the spin's first look: the arm is never called.
            assertThat(wait.await(() -> true, () -> arms.incrementAndGet() < 0)).isEqualTo(Outcome.WORK);
            assertThat(arms.get()).isZero();
            // Nothing while spinning, but the arm's re-check finds work: no sleep.
            assertThat(wait.await(() -> false, () -> arms.incrementAndGet() > 0)).isEqualTo(Outcome.WORK);
            assertThat(arms.get()).isEqualTo(1);
            assertThat(wait.armHits()).isEqualTo(1);
            assertThat(wait.sleeps()).isZero();
            // Nothing anywhere: armed, then asleep until the doorbell.
            CompletableFuture<Outcome> outcome = CompletableFuture.supplyAsync(
                    () -> wait.await(() -> false, () -> arms.incrementAndGet() < 0), r -> Thread.ofPlatform().start(r));
            awaitPhase(wait, Phase.SLEEPING);
            assertThat(arms.get()).isEqualTo(2);
            bell.signal();
            assertThat(outcome.get()).isEqualTo(Outcome.DOORBELL);
            assertThat(wait.sleeps()).isEqualTo(1);
        }
    }

    @Test
    void spinIsBoundedThenADoorbellWakesTheSleeper() throws Exception {
        try (DoorbellWait wait = new DoorbellWait(); EventFd bell0 = EventFd.create(); EventFd bell1 = EventFd.create()) {
            wait.add(bell0);
            int index = wait.add(bell1);
            CompletableFuture<Outcome> outcome = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                    r -> Thread.ofPlatform().start(r));
            // Without work the waiter must leave the spin on its own and block in epoll.
            awaitPhase(wait, Phase.SLEEPING);
            bell1.signal();
            assertThat(outcome.get()).isEqualTo(Outcome.DOORBELL);
            assertThat(wait.fired(index)).isTrue();
            assertThat(wait.fired(0)).isFalse();
            assertThat(wait.nextFired(0)).isEqualTo(index);
            assertThat(wait.nextFired(index + 1)).isEqualTo(-1);
            assertThat(bell1.drain()).as("the waiter drained the doorbell").isZero();
            assertThat(wait.sleeps()).isEqualTo(1);
        }
    }

    @Test
    void everyDoorbellThatRangIsInTheFiredSet() {
        try (DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, 0)) {
            EventFd[] bells = new EventFd[70]; // more than one word of the fired set
            for (int i = 0; i < bells.length; i++) assertThat(wait.add(bells[i] = EventFd.create())).isEqualTo(i);
            bells[2].signal();
            bells[65].signal();
            assertThat(wait.await(() -> false, TimeUnit.SECONDS.toNanos(10))).isEqualTo(Outcome.DOORBELL);
            assertThat(wait.nextFired(0)).isEqualTo(2);
            assertThat(wait.nextFired(3)).isEqualTo(65);
            assertThat(wait.nextFired(66)).isEqualTo(-1);
            assertThat(wait.await(() -> false, ONE_MS)).as("drained: no second wake").isEqualTo(Outcome.TIMED_OUT);
            assertThat(wait.fired(2)).as("the fired set is cleared per wait").isFalse();
            for (EventFd b : bells) b.close();
        }
    }

    @Test
    void closeWakesABlockedWaiterAndEveryLaterWaitIsClosed() throws Exception {
        DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, 0);
        CompletableFuture<Outcome> outcome = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                r -> Thread.ofPlatform().start(r));
        awaitPhase(wait, Phase.SLEEPING);
        wait.close();
        assertThat(outcome.get()).isEqualTo(Outcome.CLOSED);
        assertThat(wait.await(() -> true)).isEqualTo(Outcome.CLOSED);
        wait.close(); // idempotent
        wait.wakeup(); // harmless after close
    }

    @Test
    void closeAndWakeupReachAPureSpinner() throws Exception {
        DoorbellWait wait = new DoorbellWait(Mode.PURE_SPIN, 0);
        CompletableFuture<Outcome> first = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                r -> Thread.ofPlatform().start(r));
        awaitPhase(wait, Phase.SPINNING);
        wait.wakeup();
        assertThat(first.get()).isEqualTo(Outcome.WOKEN);
        CompletableFuture<Outcome> second = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                r -> Thread.ofPlatform().start(r));
        awaitPhase(wait, Phase.SPINNING);
        wait.close();
        assertThat(second.get()).isEqualTo(Outcome.CLOSED);
    }

    @Test
    void wakeupEndsASleep() throws Exception {
        try (DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, 0)) {
            CompletableFuture<Outcome> outcome = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                    r -> Thread.ofPlatform().start(r));
            awaitPhase(wait, Phase.SLEEPING);
            wait.wakeup();
            assertThat(outcome.get()).isEqualTo(Outcome.WOKEN);
        }
    }

    /**
     * A doorbell taken out of the wait (a poll group letting a queue go, from a control thread) no longer wakes
     * the sleeper, even though its fd stays open and rings; its index is the next one added.
     */
    @Test
    void aRemovedDoorbellNoLongerWakesTheSleeperAndItsIndexIsTakenAgain() throws Exception {
        try (DoorbellWait wait = new DoorbellWait(Mode.ADAPTIVE, 0); EventFd gone = EventFd.create();
             EventFd kept = EventFd.create(); EventFd next = EventFd.create()) {
            int goneIndex = wait.add(gone);
            int keptIndex = wait.add(kept);
            wait.remove(goneIndex);
            wait.remove(goneIndex);                           // idempotent
            gone.signal();                                    // rings, but is no longer the waiter's
            CompletableFuture<Outcome> outcome = CompletableFuture.supplyAsync(() -> wait.await(() -> false),
                    r -> Thread.ofPlatform().start(r));
            awaitPhase(wait, Phase.SLEEPING);
            kept.signal();                                    // the sleep lasted until a doorbell that is still in
            assertThat(outcome.get()).isEqualTo(Outcome.DOORBELL);
            assertThat(wait.fired(keptIndex)).isTrue();
            assertThat(wait.fired(goneIndex)).isFalse();
            assertThat(gone.drain()).as("the removed doorbell's signal was left alone").isEqualTo(1);
            assertThat(wait.add(next)).as("the freed index").isEqualTo(goneIndex);
        }
    }

    /**
     * The documented worker loop against a producer that rings only when notifications are
     * enabled: every item arrives, so no wakeup is lost between the re-check and the sleep.
     */
    @Test
    void theDocumentedDanceLosesNoWakeup() throws Exception {
        for (Mode mode : Mode.values()) {
            final long items = 200_000;
            AtomicLong produced = new AtomicLong();
            AtomicLong notifyEnabled = new AtomicLong(); // 1 = the consumer wants a doorbell
            AtomicLong rings = new AtomicLong();
            try (EventFd bell = EventFd.create(); DoorbellWait wait = new DoorbellWait(mode, DoorbellWait.DEFAULT_SPIN_NANOS)) {
                wait.add(bell);
                Thread producer = Thread.ofPlatform().start(() -> {
                    for (long i = 1; i <= items; i++) {
                        produced.set(i); // volatile: the "avail index" store, then the notification-flag load
                        if (notifyEnabled.get() == 1) {
                            rings.incrementAndGet();
                            bell.signal();
                        }
                        if ((i & 1023) == 0) Thread.yield(); // bursts, so the consumer really goes to sleep sometimes
                    }
                });
                long consumed = 0;
                while (consumed < items) {
                    consumed = produced.get(); // "drain the ring"
                    if (consumed == items) break;
                    notifyEnabled.set(1);
                    final long seen = consumed;
                    if (produced.get() != seen) { // re-check after enabling
                        notifyEnabled.set(0);
                        continue;
                    }
                    assertThat(wait.await(() -> produced.get() != seen)).isIn(Outcome.WORK, Outcome.DOORBELL);
                    notifyEnabled.set(0);
                }
                producer.join();
                assertThat(consumed).as(mode + ": every item arrived").isEqualTo(items);
                // How often the producer rang is the ring's business (suppression), not the waiter's.
            }
        }
    }

    private static void awaitPhase(DoorbellWait wait, Phase phase) throws InterruptedException {
        while (wait.phase() != phase) Thread.sleep(1);
        if (phase == Phase.SLEEPING) Thread.sleep(5); // let it actually enter epoll_wait (the test holds either way)
    }
}
