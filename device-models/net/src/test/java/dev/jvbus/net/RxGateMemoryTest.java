package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.testing.ProcMaps;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * A close of the rx gate that gives up on a stuck delivery keeps the rx rings' memory mapped for that delivery
 * (it is still inside the ring, and the session may let the memory go right after the reset); the mapping goes
 * once the delivery has left. A clean close holds nothing.
 */
class RxGateMemoryTest {
    static final long MEM = 0x1_0000L;

    @Test
    void aStuckDeliveryKeepsTheRxMemoryMappedAfterItsOwnerLetGoUntilItLeaves() throws Exception {
        try (Memfd peer = Memfd.create("rxgate-stuck", MEM)) {
            Memfd ours = Memfd.adopt(OwnedFd.duplicate(peer.fd()), 0, MEM, MappingRule.SEALED_MEMFD);
            GuestMemory rx = GuestMemory.of(new MemoryRegion(0, MEM, ours.segment(), ours.lifetime()));
            RxGate gate = new RxGate("dev", () -> rx);
            gate.open();
            CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
            Thread delivery = Thread.ofPlatform().daemon().start(() -> {   // daemon: left blocked if an assertion fails first
                if (gate.enter()) {
                    inside.countDown();
                    try {
                        release.await();   // stuck in its doorbell, say
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    ours.segment().set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, 42);   // then it writes the ring
                }
                gate.leave();
            });
            assertThat(inside.await(60, TimeUnit.SECONDS)).isTrue();

            assertThat(gate.close(Duration.ofMillis(20))).as("the close gives up on the stuck delivery").isFalse();
            ours.close();   // the reset is over: the session lets the memory go
            assertThat(ours.lifetime().outlivedOwner()).as("held for the delivery").isTrue();
            assertThat(ProcMaps.mappingsOfMemfd("rxgate-stuck")).as("the peer's mapping and ours").isEqualTo(2);

            release.countDown();
            delivery.join(60_000);
            assertThat(peer.segment().get(java.lang.foreign.ValueLayout.JAVA_LONG, 0)).as("its late write landed").isEqualTo(42);
            await(() -> ProcMaps.mappingsOfMemfd("rxgate-stuck") == 1, "ours goes once the delivery has left");
            assertThat(ours.lifetime().isUnmapped()).isTrue();
        }
    }

    @Test
    void aCleanCloseHoldsNothing() throws Exception {
        try (Memfd peer = Memfd.create("rxgate-clean", MEM)) {
            Memfd ours = Memfd.adopt(OwnedFd.duplicate(peer.fd()), 0, MEM, MappingRule.SEALED_MEMFD);
            GuestMemory rx = GuestMemory.of(new MemoryRegion(0, MEM, ours.segment(), ours.lifetime()));
            RxGate gate = new RxGate("dev", () -> rx);
            gate.open();
            assertThat(gate.enter()).isTrue();
            gate.leave();
            assertThat(gate.close(Duration.ofMillis(20))).isTrue();
            ours.close();
            assertThat(ours.lifetime().isUnmapped()).isTrue();
            assertThat(ProcMaps.mappingsOfMemfd("rxgate-clean")).isEqualTo(1);
        }
    }

    static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!cond.getAsBoolean()) {
            assertThat(System.nanoTime() - deadline).as(what).isNegative();
            Thread.sleep(2);
        }
    }
}
