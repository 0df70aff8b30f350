package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** A mapping goes with the last of its owner's and its users' releases, exactly once, and never comes back. */
class MappingLifetimeTest {

    @Test
    void theUnmapRunsOnceWithTheLastReleaseWhateverOrderAndThreadsTheyComeFrom() throws Exception {
        for (int round = 0; round < 200; round++) {
            AtomicInteger unmaps = new AtomicInteger();
            MappingLifetime m = new MappingLifetime("round " + round, unmaps::incrementAndGet);
            List<MappingLifetime.Hold> holds = new ArrayList<>();
            for (int i = 0; i < 8; i++) holds.add(m.hold());
            CountDownLatch go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (MappingLifetime.Hold h : holds)
                threads.add(Thread.ofPlatform().start(() -> {
                    try { go.await(); } catch (InterruptedException e) { return; }
                    h.release();
                    h.release();   // a second release of the same hold counts for nothing
                }));
            threads.add(Thread.ofPlatform().start(() -> {
                try { go.await(); } catch (InterruptedException e) { return; }
                m.release();
                m.release();       // nor does the owner's second
            }));
            go.countDown();
            for (Thread t : threads) t.join();
            assertThat(unmaps).as("round " + round).hasValue(1);
            assertThat(m.isUnmapped()).isTrue();
        }
    }

    @Test
    void anOwnerThatLetsGoWhileAUserHoldsItLeavesItMappedUntilThatUserIsGone() {
        AtomicInteger unmaps = new AtomicInteger();
        MappingLifetime m = new MappingLifetime("held", unmaps::incrementAndGet);
        MappingLifetime.Hold worker = m.hold();
        m.release();
        assertThat(unmaps).as("a worker may still touch it").hasValue(0);
        assertThat(m.outlivedOwner()).isTrue();
        assertThat(m.users()).isEqualTo(1);
        worker.release();
        assertThat(unmaps).hasValue(1);
        assertThat(m.outlivedOwner()).isFalse();
    }

    @Test
    void aHoldAskedForAfterTheUnmapIsRefusedAndRevivesNothing() {
        AtomicInteger unmaps = new AtomicInteger();
        MappingLifetime m = new MappingLifetime("gone", unmaps::incrementAndGet);
        m.release();
        assertThat(unmaps).hasValue(1);
        assertThatThrownBy(m::hold).isInstanceOf(IllegalStateException.class).hasMessageContaining("unmapped");
        m.release();
        assertThat(unmaps).hasValue(1);
    }
}
