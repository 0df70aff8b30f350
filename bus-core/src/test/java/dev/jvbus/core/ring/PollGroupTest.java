package dev.jvbus.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.ring.QueueWorkerTest.CounterService;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.core.sys.EventFd;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Several devices' queues served by one thread: each as if it had a thread of its own, none starving another. */
@Timeout(value = 120, unit = TimeUnit.SECONDS) // a hang guard only; no test asserts on time
class PollGroupTest {

    private static void produce(CounterService s, EventFd kick, int n) {
        for (int i = 0; i < n; i++) {
            s.available.incrementAndGet();
            if (s.armed) kick.signal();   // the producer rings only when the worker asked for it
        }
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(condition.getAsBoolean()).as(what).isTrue();
    }

    /** Records which threads polled it. */
    static class ThreadRecordingService extends CounterService {
        final Set<String> threads = ConcurrentHashMap.newKeySet();

        @Override public boolean poll() throws QueueFault {
            threads.add(Thread.currentThread().getName());
            return super.poll();
        }
    }

    @Test
    void oneThreadServesEveryMemberAndSleepsOnAllTheirDoorbellsAtOnce() throws Exception {
        ThreadRecordingService a = new ThreadRecordingService(), b = new ThreadRecordingService();
        try (PollGroup g = new PollGroup("group-under-test", DoorbellWait.Mode.ADAPTIVE);
             EventFd ka = EventFd.create(); EventFd kb = EventFd.create();
             QueueWorker wa = new QueueWorker("a", 0, a, List.of(ka), null, g, f -> { }).start();
             QueueWorker wb = new QueueWorker("b", 1, b, List.of(kb), null, g, f -> { }).start()) {
            for (int round = 1; round <= 30; round++) {
                Thread.sleep(1);               // long enough for the group to go to sleep sometimes
                if (round % 2 == 0) produce(a, ka, 10); else produce(b, kb, 10);
                long wantA = 10L * (round / 2), wantB = 10L * ((round + 1) / 2);
                await(() -> a.consumed == wantA && b.consumed == wantB, "both members consumed what was produced");
            }
            assertThat(a.threads).containsExactly("group-under-test");
            assertThat(b.threads).containsExactly("group-under-test");
            assertThat(g.doorbellWait().doorbellWakes()).as("a kick of either member woke the sleeping group").isPositive();
            assertThat(wa.doorbellWait()).isSameAs(wb.doorbellWait());
        }
    }

    /**
     * A group's spin adapts to its members' pace as a worker's own does (SpinBudget): two queues fed a millisecond
     * after the group went to sleep (20 times the spin's maximum) take its spin to 0, so the group arms and sleeps at
     * once; a member whose driver publishes whenever the group arms earns it back. With the fixed 50 us spin the
     * group's budget never reached 0.
     */
    @Test
    void theGroupsSpinShrinksToZeroWhileItsMembersAreFedSlowlyAndGrowsWhenOneIsFedAtOnce() throws Exception {
        AtomicLong fast = new AtomicLong();
        CounterService a = new CounterService() {
            @Override public boolean armDoorbell() {
                if (fast.get() != 0) available.incrementAndGet();
                return super.armDoorbell();
            }
        };
        CounterService b = new CounterService();
        try (PollGroup g = new PollGroup("group-under-test", DoorbellWait.Mode.ADAPTIVE);
             EventFd ka = EventFd.create(); EventFd kb = EventFd.create();
             QueueWorker wa = new QueueWorker("a", 0, a, List.of(ka), null, g, f -> { }).start();
             QueueWorker wb = new QueueWorker("b", 1, b, List.of(kb), null, g, f -> { }).start()) {
            DoorbellWait wait = g.doorbellWait();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            // Grown first (the fast member), so that the shrink below is a shrink and not where it started.
            fast.set(1);
            produce(a, ka, 1);
            await(() -> wait.spinNanos() > 0, "a member fed at once earns the group a spin");
            fast.set(0);
            for (int i = 0; wait.spinNanos() != 0 && System.nanoTime() < deadline; i++) {
                await(() -> a.consumed == a.available.get() && b.consumed == b.available.get(), "all consumed");
                await(() -> wait.phase() == DoorbellWait.Phase.SLEEPING, "the group went to sleep");
                Thread.sleep(1);
                if (i % 2 == 0) produce(a, ka, 1); else produce(b, kb, 1);
            }
            assertThat(wait.spinNanos()).as("members fed slower than the spin's maximum are not spun on").isZero();
            fast.set(1);
            produce(a, ka, 1);
            await(() -> wait.spinNanos() > 0, "a member fed at once earns the group its spin back");
        }
    }

    /**
     * A queue that always has a batch waiting (a driver that never stops sending) gets one batch per round,
     * and the other member its turn in between: the group does not poll one member until it runs dry.
     */
    @Test
    void aQueueThatIsNeverEmptyDoesNotStarveAnother() throws Exception {
        AtomicLong busyBatches = new AtomicLong();
        QueueService neverEmpty = new QueueService() {
            @Override public boolean poll() { busyBatches.incrementAndGet(); return true; }
            @Override public boolean hasWork() { return true; }
            @Override public boolean armDoorbell() { return true; }
            @Override public void disarmDoorbell() { }
        };
        CounterService quiet = new CounterService();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd k0 = EventFd.create(); EventFd k1 = EventFd.create();
             QueueWorker busy = new QueueWorker("busy", 0, neverEmpty, List.of(k0), null, g, f -> { }).start();
             QueueWorker other = new QueueWorker("other", 1, quiet, List.of(k1), null, g, f -> { }).start()) {
            await(() -> busyBatches.get() > 1000, "the busy queue is being served");
            for (int i = 1; i <= 20; i++) {
                produce(quiet, k1, 1);
                long want = i;
                await(() -> quiet.consumed == want, "the quiet queue is served beside the busy one");
            }
            assertThat(busy.isAlive()).isTrue();
        }
    }

    @Test
    void aFaultingMemberLeavesTheGroupAloneAndTheOthersKeepBeingServed() throws Exception {
        CounterService bad = new CounterService(), good = new CounterService();
        bad.failAt = 5;
        CompletableFuture<QueueFault> badFault = new CompletableFuture<>();
        CompletableFuture<QueueFault> goodFault = new CompletableFuture<>();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd kBad = EventFd.create(); EventFd kGood = EventFd.create();
             QueueWorker wBad = new QueueWorker("bad", 3, bad, List.of(kBad), null, g, badFault::complete).start();
             QueueWorker wGood = new QueueWorker("good", 1, good, List.of(kGood), null, g, goodFault::complete).start()) {
            produce(good, kGood, 3);
            await(() -> good.consumed == 3, "served before the fault");
            produce(bad, kBad, 5);
            QueueFault f = badFault.get(60, TimeUnit.SECONDS);
            assertThat(f.queue()).isEqualTo(3);
            assertThat(f.reason()).isEqualTo(QueueFault.Reason.CHAIN_LOOP);
            await(() -> !wBad.isAlive(), "the faulting member left the group");
            assertThat(g.size()).isEqualTo(1);
            for (int i = 1; i <= 10; i++) {
                produce(good, kGood, 10);
                long want = 3 + 10L * i;
                await(() -> good.consumed == want, "the other member is still served");
            }
            // The one that left is not polled again: work for it, then for the other, which the group takes in a
            // later round than any in which it would have polled the first.
            long badBefore = bad.consumed;
            bad.failAt = -1;
            produce(bad, kBad, 5);
            produce(good, kGood, 1);
            await(() -> good.consumed == 104, "the other member is served after the work for the one that left");
            assertThat(bad.consumed).as("the member that faulted is not polled").isEqualTo(badBefore);
            assertThat(goodFault).isNotDone();
            assertThat(wGood.isAlive()).isTrue();
        }
    }

    /**
     * A member whose doorbell arming fails (its ring's memory gone, say) outside its poll: the group's thread calls
     * that for every member before it sleeps, so the failure is that member's fault, not the group's end.
     */
    @Test
    void aMemberWhoseArmingFailsLeavesWithItsFaultAndTheOthersKeepBeingServed() throws Exception {
        CounterService bad = new CounterService() {
            @Override public boolean armDoorbell() { throw new IllegalStateException("ring memory gone"); }
        };
        CounterService good = new CounterService();
        CompletableFuture<QueueFault> badFault = new CompletableFuture<>();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd kBad = EventFd.create(); EventFd kGood = EventFd.create();
             QueueWorker wGood = new QueueWorker("good", 1, good, List.of(kGood), null, g, f -> { }).start();
             QueueWorker wBad = new QueueWorker("bad", 3, bad, List.of(kBad), null, g, badFault::complete).start()) {
            QueueFault f = badFault.get(60, TimeUnit.SECONDS);     // the group went idle, armed everyone, and that one threw
            assertThat(f.queue()).isEqualTo(3);
            assertThat(f.getMessage()).contains("ring memory gone");
            await(() -> !wBad.isAlive(), "the failing member left the group");
            for (int i = 1; i <= 10; i++) {
                produce(good, kGood, 10);
                long want = 10L * i;
                await(() -> good.consumed == want, "the other member is still served, sleeping and waking on its doorbell");
            }
            assertThat(wGood.isAlive()).isTrue();
        }
    }

    @Test
    void quiesceParksOneMemberOnlyAndResumeCarriesOn() throws Exception {
        CounterService a = new CounterService(), b = new CounterService();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd ka = EventFd.create(); EventFd kb = EventFd.create();
             QueueWorker wa = new QueueWorker("a", 0, a, List.of(ka), null, g, f -> { }).start();
             QueueWorker wb = new QueueWorker("b", 1, b, List.of(kb), null, g, f -> { }).start()) {
            produce(a, ka, 10);
            await(() -> a.consumed == 10, "served");
            assertThat(wa.quiesce()).isTrue();
            produce(a, ka, 10);
            produce(b, kb, 10);
            await(() -> b.consumed == 10, "the other member is served while one is parked");
            assertThat(a.consumed).as("a parked member's ring is not touched").isEqualTo(10);
            wa.resume();
            await(() -> a.consumed == 20, "back from the park, the member is served again");
        }
    }

    /**
     * A parked member's kick is left to whoever else waits on that eventfd: a device paused on one bus while its
     * restore runs on another, its driver ringing the one kick fd it gave both. The paused side's group held the
     * fd in its epoll, woke at the kick and drained it; the other group's epoll (level-triggered: it re-checks the
     * fd) found nothing and slept on, the restored queue's buffers never served (FleetMigrationTest: the stream
     * never flowed through B). Back from the park, the member's own kick wakes its group again.
     */
    @Test
    void aParkedMembersDoorbellIsLeftToTheOtherWaiterOnItAndRejoinsTheWaitOnResume() throws Exception {
        CounterService pausedHere = new CounterService(), restoredThere = new CounterService();
        try (EventFd kick = EventFd.create();
             PollGroup here = new PollGroup("bus-a", DoorbellWait.Mode.ADAPTIVE);
             PollGroup there = new PollGroup("bus-b", DoorbellWait.Mode.ADAPTIVE);
             QueueWorker paused = new QueueWorker("paused", 1, pausedHere, List.of(kick), null, here, f -> { }).start()) {
            assertThat(paused.quiesce()).isTrue();
            try (QueueWorker restored = new QueueWorker("restored", 1, restoredThere, List.of(kick), null, there, f -> { }).start()) {
                for (int i = 1; i <= 200; i++) {
                    await(() -> here.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING
                            && there.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING && restoredThere.armed, "both groups asleep");
                    produce(restoredThere, kick, 1);
                    long want = i;
                    await(() -> restoredThere.consumed == want, "round " + i + ": the kick wakes the restored queue's group");
                }
            }
            assertThat(pausedHere.consumed).as("a parked member's ring is not touched").isZero();
            paused.resume();
            await(() -> pausedHere.armed && here.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING, "resumed, its group sleeps armed");
            produce(pausedHere, kick, 1);
            await(() -> pausedHere.consumed == 1, "back from the park, its own kick wakes its group");
        }
    }

    /**
     * A stopped member's doorbells leave the group's epoll before stop returns (the connector closes its kick fd
     * right after), and the other members carry on: the group serves a later member on the freed doorbell slot.
     */
    @Test
    void stopTakesOneMemberAndItsDoorbellsOutAndTheOthersCarryOn() throws Exception {
        CounterService a = new CounterService(), b = new CounterService(), c = new CounterService();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd kb = EventFd.create(); EventFd kc = EventFd.create();
             QueueWorker wb = new QueueWorker("b", 1, b, List.of(kb), null, g, f -> { }).start()) {
            EventFd ka = EventFd.create();
            QueueWorker wa = new QueueWorker("a", 0, a, List.of(ka), null, g, f -> { }).start();
            produce(a, ka, 5);
            await(() -> a.consumed == 5, "served");
            assertThat(wa.stop(QueueWorker.WAIT_BOUND)).isTrue();
            assertThat(wa.isAlive()).isFalse();
            ka.close();                      // what the connector does once the queue stopped
            produce(a, ka, 5);
            for (int i = 1; i <= 10; i++) {
                produce(b, kb, 10);
                long want = 10L * i;
                await(() -> b.consumed == want, "the other member carries on");
            }
            // b's work came after a's: served in a later round than any that would have polled a.
            assertThat(a.consumed).as("a stopped member is not polled").isEqualTo(5);
            try (QueueWorker wc = new QueueWorker("c", 2, c, List.of(kc), null, g, f -> { }).start()) {
                // Let the group go to sleep, so that only c's doorbell (on the slot a had) can wake it.
                await(() -> g.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING, "the group sleeps");
                produce(c, kc, 1);
                await(() -> c.consumed == 1, "a later member is woken by its own doorbell");
            }
        }
    }

    @Test
    void theContainersGroupsAreOnePerCoreAndEachQueueGoesToTheLeastLoaded() throws Exception {
        CounterService s0 = new CounterService(), s1 = new CounterService(), s2 = new CounterService();
        try (PollGroups groups = new PollGroups("c", 2);
             EventFd k0 = EventFd.create(); EventFd k1 = EventFd.create(); EventFd k2 = EventFd.create()) {
            PollGroup g0 = groups.pick();
            QueueWorker w0 = new QueueWorker("q0", 0, s0, List.of(k0), null, g0, f -> { }).start();
            PollGroup g1 = groups.pick();
            QueueWorker w1 = new QueueWorker("q1", 1, s1, List.of(k1), null, g1, f -> { }).start();
            assertThat(g1).as("the second queue goes to a second group, a thread of its own").isNotSameAs(g0);
            assertThat(List.of(g0.name(), g1.name())).containsExactly("c/poll-0", "c/poll-1");
            PollGroup g2 = groups.pick();
            QueueWorker w2 = new QueueWorker("q2", 2, s2, List.of(k2), null, g2, f -> { }).start();
            assertThat(g2).as("no more groups than cores: the third queue shares one").isIn(g0, g1);
            assertThat(groups.groups()).as("what a monitor sees: the groups made").containsExactlyInAnyOrder(g0, g1);
            w0.stop(QueueWorker.WAIT_BOUND);
            w2.stop(QueueWorker.WAIT_BOUND);
            assertThat(g0.size()).as("the first group let its members go").isZero();
            assertThat(g1.size()).isEqualTo(1);
            assertThat(groups.pick()).as("the least loaded").isSameAs(g0);
            w1.close();
            groups.close();
            assertThat(groups.groups()).as("closed groups are over: a monitor sees none").isEmpty();
        }
    }

    @Test
    void aContainerWithOneQueueAtATimeKeepsOneGroup() throws Exception {
        try (PollGroups groups = new PollGroups("c", 4); EventFd k = EventFd.create()) {
            PollGroup first = groups.pick();
            for (int i = 0; i < 3; i++) {
                PollGroup g = groups.pick();
                assertThat(g).as("an idle group is taken before a new thread is made").isSameAs(first);
                QueueWorker w = new QueueWorker("q" + i, 0, new CounterService(), List.of(k), null, g, f -> { }).start();
                assertThat(w.stop(QueueWorker.WAIT_BOUND)).isTrue();
            }
        }
    }

    /**
     * A queue that joins just as the group's thread ends (its last member left: a device reset or migrated,
     * then started again) is served, by the thread the join starts. The ending thread must not take it in its
     * exit: it did, marking the new member gone from the old thread's cleanup, so the new thread found nobody
     * and the queue was never polled again, the device looking live (a migrated device's stream never flowed).
     * The join is timed to land in that exit, at a varying distance after the last member left.
     */
    @Test
    void aMemberThatJoinsWhileTheGroupsThreadEndsIsServedByTheNextThread() throws Exception {
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE); EventFd k = EventFd.create()) {
            java.util.Random random = new java.util.Random(42);
            QueueWorker previous = null;
            for (int i = 0; i < 2000; i++) {
                if (previous != null) {
                    QueueWorker leaving = previous;
                    Thread stopper = Thread.ofPlatform().start(() -> leaving.stop(QueueWorker.WAIT_BOUND));
                    while (leaving.isAlive()) Thread.onSpinWait();     // spin, not sleep: join right as it left
                    long until = System.nanoTime() + random.nextInt(20_000);
                    while (System.nanoTime() < until) Thread.onSpinWait();
                    CounterService s = new CounterService();
                    QueueWorker w = new QueueWorker("q" + i, 0, s, List.of(k), null, g, f -> { }).start();
                    stopper.join();
                    produce(s, k, 1);
                    int round = i;
                    await(() -> s.consumed == 1 || !w.isAlive(), "round " + round + ": the new member is served or let go");
                    assertThat(w.isAlive()).as("round %d: a member nobody stopped is still in the group", round).isTrue();
                    assertThat(s.consumed).isEqualTo(1);
                    previous = w;
                } else {
                    CounterService s = new CounterService();
                    previous = new QueueWorker("q0", 0, s, List.of(k), null, g, f -> { }).start();
                }
            }
            previous.stop(QueueWorker.WAIT_BOUND);
        }
    }

    /**
     * A group that is over (closed, as when its thread's wait breaks) is not handed out again: pick() gave it to
     * the next queue, whose join it refused ("poll group ... is closed"), so every later device start in the
     * container failed on it. Now a new group takes its place and serves the next queue.
     */
    @Test
    void aGroupThatIsOverIsReplacedAndTheNextQueueIsServed() throws Exception {
        CounterService first = new CounterService(), next = new CounterService();
        try (PollGroups groups = new PollGroups("c", 1); EventFd k0 = EventFd.create(); EventFd k1 = EventFd.create()) {
            PollGroup over = groups.pick();
            QueueWorker w0 = new QueueWorker("q0", 0, first, List.of(k0), null, over, f -> { }).start();
            produce(first, k0, 1);
            await(() -> first.consumed == 1, "served by the first group");
            over.close();
            await(() -> !w0.isAlive(), "the group that is over let its member go");
            assertThat(over.isClosed()).isTrue();

            PollGroup g = groups.pick();
            assertThat(g).as("a group that is over is not handed out").isNotSameAs(over);
            assertThat(g.isClosed()).isFalse();
            assertThat(g.name()).as("in its place").isEqualTo("c/poll-0");
            try (QueueWorker w1 = new QueueWorker("q1", 1, next, List.of(k1), null, g, f -> { }).start()) {
                produce(next, k1, 3);
                await(() -> next.consumed == 3, "the next queue is served by the new group");
            }
        }
    }

    /**
     * A group can be over between {@link PollGroups#pick} and the member's join (its thread's wait broke in between):
     * the join failed then ("poll group ... is closed"), and with it the device's start. Now the member joins the
     * group in its place and is served; a group of no container's still refuses, and its member holds nothing.
     */
    @Test
    void aGroupOverBetweenPickAndJoinSendsTheMemberToAFreshGroupAndTheStartSucceeds() throws Exception {
        CounterService s = new CounterService();
        try (PollGroups groups = new PollGroups("c", 1); EventFd k = EventFd.create()) {
            PollGroup picked = groups.pick();
            picked.close();   // over after the pick, before the join
            try (QueueWorker w = new QueueWorker("q", 0, s, List.of(k), null, picked, f -> { }).start()) {
                assertThat(w.group()).as("joined the group in its place").isNotSameAs(picked);
                assertThat(w.group().name()).isEqualTo("c/poll-0");
                produce(s, k, 3);
                await(() -> s.consumed == 3, "served by the fresh group");
            }
        }
        try (PollGroup alone = new PollGroup("alone", DoorbellWait.Mode.ADAPTIVE); EventFd k = EventFd.create()) {
            alone.close();
            dev.jvbus.core.sys.MappingLifetime lifetime = new dev.jvbus.core.sys.MappingLifetime("ring memory", 4096, () -> { });
            dev.jvbus.core.memory.GuestMemory memory = dev.jvbus.core.memory.GuestMemory.of(new dev.jvbus.core.memory.MemoryRegion(
                    0, 4096, java.lang.foreign.MemorySegment.ofArray(new byte[4096]), lifetime));
            QueueWorker w = new QueueWorker("q", 0, new CounterService(), List.of(k), null, alone, f -> { }).holding(memory);
            assertThatThrownBy(w::start).isInstanceOf(IllegalStateException.class).hasMessageContaining("poll group alone is closed");
            assertThat(w.isAlive()).isFalse();
            assertThat(w.stop(java.time.Duration.ofSeconds(1))).as("a worker that never joined stops at once").isTrue();
            assertThat(lifetime.users()).as("and lets its memory go").isZero();
        }
    }

    /**
     * A member whose driver added work without ringing (its doorbell suppressed while its ring had work) sleeps
     * with work pending until something else wakes the group: another member's kick here. That wake-up finds it
     * and counts it on its queue ({@link QueueCounters#lateWakeups()}, exported with the other queue stats), so the
     * stall is visible; the member that rang is not counted.
     */
    @Test
    void aMemberFoundWithWorkItsDoorbellDidNotRingForIsCountedAsALateWakeup() throws Exception {
        CounterService silent = new CounterService(), ringing = new CounterService();
        QueueCounters silentCounts = new QueueCounters(), ringingCounts = new QueueCounters();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE);
             EventFd ks = EventFd.create(); EventFd kr = EventFd.create();
             QueueWorker ws = new QueueWorker("silent", 0, silent, List.of(ks), List.of(silentCounts), g, f -> { }).start();
             QueueWorker wr = new QueueWorker("ringing", 1, ringing, List.of(kr), List.of(ringingCounts), g, f -> { }).start()) {
            for (int i = 1; i <= 5; i++) {
                await(() -> g.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING && silent.armed && ringing.armed, "the group asleep, both armed");
                silent.available.incrementAndGet();    // work, and no kick: the driver's doorbell suppressed
                produce(ringing, kr, 1);
                long want = i;
                await(() -> silent.consumed == want && ringing.consumed == want, "round " + i + ": the other member's kick serves both");
                await(() -> silentCounts.lateWakeups() == want, "round " + i + ": the silent member counted late");
            }
            assertThat(ws.lateWakeups()).isEqualTo(5);
            assertThat(silentCounts.kicks()).as("it never rang").isZero();
            assertThat(ringingCounts.lateWakeups()).as("the member that rang was not late").isZero();
            assertThat(wr.lateWakeups()).isZero();
            assertThat(ringingCounts.kicks()).isEqualTo(5);
        }
    }

    /**
     * A lone member whose driver never rings for its work is still served, within the group's bounded sleep
     * (PollGroup.STALL_CHECK_NANOS), and counted late: before, the group slept on in epoll and the queue stalled
     * for good, nothing showing it.
     */
    @Test
    void aLoneMemberWhoseDoorbellNeverRingsIsServedWithinTheStallCheckAndCountedLate() throws Exception {
        CounterService silent = new CounterService();
        QueueCounters counts = new QueueCounters();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE); EventFd k = EventFd.create();
             QueueWorker w = new QueueWorker("silent", 0, silent, List.of(k), List.of(counts), g, f -> { }).start()) {
            await(() -> g.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING && silent.armed, "the group asleep, armed");
            silent.available.incrementAndGet();        // work, and no kick
            await(() -> silent.consumed == 1, "served without a kick");
            await(() -> counts.lateWakeups() == 1, "counted as a late wake-up");
            assertThat(w.isAlive()).isTrue();
        }
    }

    /**
     * A member that reads its own fd (a TAP's reads): level-triggered in the group's epoll, it wakes the sleeping group
     * while readable, and the wait never reads it, so every signal is the member's to take (an fd drained by the wait,
     * as a doorbell is, would lose a TAP's frame). The group goes back to sleep once the member has read it empty.
     */
    @Test
    void aMemberWokenByAReadableFdGetsWhatTheFdHoldsTheWaitNeverReadsIt() throws Exception {
        AtomicLong taken = new AtomicLong();
        Set<String> threads = ConcurrentHashMap.newKeySet();
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE); EventFd fd = EventFd.create()) {
            QueueService reads = new QueueService() {
                @Override public boolean poll() {
                    threads.add(Thread.currentThread().getName());
                    long n = fd.drain();           // the member's own read
                    taken.addAndGet(n);
                    return n > 0;
                }
                @Override public boolean hasWork() { return false; }   // no look while spinning: the epoll alone wakes it
                @Override public boolean armDoorbell() { return false; }
                @Override public void disarmDoorbell() { }
            };
            QueueWorker w = QueueWorker.reading("reads", reads, List.of(fd), g, f -> { }).start();
            for (int i = 1; i <= 20; i++) {
                await(() -> g.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING, "the group asleep");
                long sleeps = g.doorbellWait().sleeps();
                for (int k = 0; k < 3; k++) fd.signal();
                long want = 3L * i;
                await(() -> taken.get() == want, "the member read every signal the fd held");
                assertThat(g.doorbellWait().sleeps()).as("woken from its sleep by the fd").isGreaterThan(sleeps - 1);
            }
            assertThat(threads).containsExactly("g");
            assertThat(g.doorbellWait().doorbellWakes()).isPositive();
            w.close();
        }
    }

    /**
     * A reading member (a TAP's reads, put in the group of the device whose frames it answers) does not count for
     * placement: the device's queue that picks a group after it lands in that same group, not in a new one.
     */
    @Test
    void aReadingMemberDoesNotCountForPlacementSoTheQueueItAnswersJoinsItsGroup() throws Exception {
        try (PollGroups groups = new PollGroups("c", 2); EventFd fd = EventFd.create(); EventFd k = EventFd.create()) {
            PollGroup g = groups.pick();
            QueueWorker reads = QueueWorker.reading("reads", new CounterService(), List.of(fd), g, f -> { }).start();
            assertThat(g.size()).isZero();
            PollGroup forQueue = groups.pick();
            assertThat(forQueue).as("the queue picks the group its TAP is read in").isSameAs(g);
            QueueWorker q = new QueueWorker("q", 0, new CounterService(), List.of(k), null, forQueue, f -> { }).start();
            assertThat(g.size()).isEqualTo(1);
            assertThat(groups.pick()).as("the next queue: a group of its own").isNotSameAs(g);
            q.close();
            reads.close();
            assertThat(g.size()).isZero();
        }
    }

    /** whenGone runs once, when the group has let the member go: after a stop, and after a fault in its poll. */
    @Test
    void whenGoneRunsOnceWhenTheGroupHasLetTheMemberGo() throws Exception {
        AtomicLong stopped = new AtomicLong(), faulted = new AtomicLong();
        CounterService failing = new CounterService();
        failing.failAt = 1;
        try (PollGroup g = new PollGroup("g", DoorbellWait.Mode.ADAPTIVE); EventFd k1 = EventFd.create(); EventFd k2 = EventFd.create()) {
            QueueWorker a = new QueueWorker("a", 0, new CounterService(), List.of(k1), null, g, f -> { }).whenGone(stopped::incrementAndGet).start();
            QueueWorker b = new QueueWorker("b", 1, failing, List.of(k2), null, g, f -> { }).whenGone(faulted::incrementAndGet).start();
            assertThat(a.stop(QueueWorker.WAIT_BOUND)).isTrue();
            assertThat(stopped.get()).as("run before stop returned").isEqualTo(1);
            produce(failing, k2, 1);
            await(() -> faulted.get() == 1, "run when the group let the faulting member go");
            a.close();
            b.close();
            assertThat(stopped.get()).isEqualTo(1);
            assertThat(faulted.get()).isEqualTo(1);
            assertThatThrownBy(() -> a.whenGone(() -> { })).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void thePollParameterIsSharedByDefaultOwnOnRequestAndNothingElse() {
        assertThat(PollGroups.Poll.of(Map.of())).isEqualTo(PollGroups.Poll.SHARED);
        assertThat(PollGroups.Poll.of(Map.of("poll", "own"))).isEqualTo(PollGroups.Poll.OWN);
        assertThat(PollGroups.Poll.of(Map.of("poll", "shared"))).isEqualTo(PollGroups.Poll.SHARED);
        assertThatThrownBy(() -> PollGroups.Poll.of(Map.of("poll", "pmd"))).hasMessageContaining("'poll' must be 'shared' or 'own'");
    }

    @Test
    void theBusyPollParameterIsOffByDefaultOnOnRequestAndNothingElse() {
        assertThat(PollGroups.Polling.of(Map.of())).isEqualTo(PollGroups.Polling.DEFAULT);
        assertThat(PollGroups.Polling.of(Map.of("busy-poll", "on", "poll", "own")))
                .isEqualTo(new PollGroups.Polling(PollGroups.Poll.OWN, DoorbellWait.Mode.PURE_SPIN));
        assertThat(PollGroups.Polling.of(Map.of("busy-poll", "off")).idle()).isEqualTo(DoorbellWait.Mode.ADAPTIVE);
        assertThatThrownBy(() -> PollGroups.Polling.of(Map.of("busy-poll", "yes"))).hasMessageContaining("'busy-poll' must be 'on' or 'off'");
        assertThatThrownBy(() -> PollGroups.Polling.of(Map.of("busy-poll", "on", "poll", "pmd"))).hasMessageContaining("'poll' must be");
    }

    /**
     * A busy-polling group never sleeps and never arms its members' doorbells: their producer, fed in bursts far apart
     * (each gap 20 times the spin budget of the default groups), never rings. The default group beside it, given the same
     * bursts, sleeps and is woken by kicks: what makes the difference the parameter's doing. The two kinds are apart.
     */
    @Test
    void aBusyPollingGroupServesItsMembersWithoutEverSleepingOrBeingKicked() throws Exception {
        CounterService busy = new CounterService(), sleepy = new CounterService();
        AtomicLong busyKicks = new AtomicLong(), sleepyKicks = new AtomicLong();
        try (PollGroups groups = new PollGroups("c", 1); EventFd kb = EventFd.create(); EventFd ks = EventFd.create()) {
            PollGroup spinning = groups.pick(DoorbellWait.Mode.PURE_SPIN), adaptive = groups.pick();
            assertThat(spinning).as("busy-polling queues have groups of their own").isNotSameAs(adaptive);
            assertThat(List.of(spinning.name(), adaptive.name())).containsExactly("c/busy-poll-0", "c/poll-0");
            QueueWorker wb = new QueueWorker("busy", 0, busy, List.of(kb), null, spinning, f -> { }).start();
            QueueWorker ws = new QueueWorker("sleepy", 1, sleepy, List.of(ks), null, adaptive, f -> { }).start();
            await(() -> busy.consumed == 0 && !busy.armed && spinning.doorbellWait().phase() == DoorbellWait.Phase.SPINNING,
                    "the busy group spinning, its member disarmed");
            for (int burst = 1; burst <= 20; burst++) {
                Thread.sleep(1);
                for (int i = 0; i < 10; i++) {
                    busy.available.incrementAndGet();
                    if (busy.armed) busyKicks.incrementAndGet();
                    sleepy.available.incrementAndGet();
                    if (sleepy.armed) {
                        sleepyKicks.incrementAndGet();
                        ks.signal();
                    }
                }
                long want = 10L * burst;
                await(() -> busy.consumed == want && sleepy.consumed == want, "both members served burst " + want / 10);
            }
            assertThat(busyKicks.get()).as("the busy member's producer never found its doorbell armed").isZero();
            assertThat(spinning.doorbellWait().sleeps()).as("the busy group never slept").isZero();
            assertThat(spinning.doorbellWait().mode()).isEqualTo(DoorbellWait.Mode.PURE_SPIN);
            assertThat(adaptive.doorbellWait().sleeps()).as("the default group, fed the same, slept between bursts").isPositive();
            assertThat(sleepyKicks.get()).as("and its member's producer rang to wake it").isPositive();

            // With no member left, the busy group's thread ends: it keeps a core only while it has queues.
            assertThat(wb.stop(QueueWorker.WAIT_BOUND)).isTrue();
            await(() -> Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().equals("c/busy-poll-0")),
                    "the busy group's thread gone with its last member");
            ws.close();
        }
    }
}
