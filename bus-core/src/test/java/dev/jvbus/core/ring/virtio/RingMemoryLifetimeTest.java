package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.testing.ProcMaps;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * A peer's memory as connectors map it ({@link Memfd#adopt}): rings over it take the direct path, and it is
 * unmapped only once no worker that may touch it can still run. A worker left behind by a bounded stop, which
 * goes on to touch its ring after the memory's owner (the session) let go, finds the memory still mapped,
 * not a SIGSEGV that would end this JVM; the mapping goes, once, when that worker's thread has exited.
 */
class RingMemoryLifetimeTest {
    static final long G = 0x10_0000L, MEM = 0x1_0000L;
    static final long DESC = G, AVAIL = G + 0x1000, USED = G + 0x2000, BUF = G + 0x4000;
    static final int SIZE = 64;

    @Test
    void aRingInAPeersMappingRunsDirectAndTheMappingGoesWhenItsOwnerClosesIt() throws Exception {
        try (Memfd peer = Memfd.create("lifetime-direct", MEM)) {
            Memfd ours = Memfd.adopt(OwnedFd.duplicate(peer.fd()), 0, MEM, MappingRule.SEALED_MEMFD);
            assertThat(ProcMaps.mappingsOfMemfd("lifetime-direct")).as("the peer's mapping and ours").isEqualTo(2);
            GuestMemory memory = GuestMemory.of(new MemoryRegion(G, MEM, ours.segment(), ours.lifetime()));
            assertThat(SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, true, false, true, Notifier.NONE).ring.direct).isTrue();
            ours.close();
            ours.close();   // the owner closes once however often asked
            assertThat(ProcMaps.mappingsOfMemfd("lifetime-direct")).as("ours is gone, the peer's stays").isEqualTo(1);
            assertThat(ours.lifetime().isUnmapped()).isTrue();
        }
    }

    @Test
    void aWorkerLeftBehindThatTouchesItsRingAfterTheOwnerClosedFindsItMappedAndTheMappingGoesWhenItExits() throws Exception {
        try (Memfd peer = Memfd.create("lifetime-worker", MEM); EventFd kick = EventFd.create()) {
            Memfd ours = Memfd.adopt(OwnedFd.duplicate(peer.fd()), 0, MEM, MappingRule.SEALED_MEMFD);
            GuestMemory busSide = GuestMemory.of(new MemoryRegion(G, MEM, ours.segment(), ours.lifetime()));
            GuestMemory peerSide = GuestMemory.of(new MemoryRegion(G, MEM, peer.segment()));
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, peerSide, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, busSide, true, false, false, Notifier.NONE);
            assertThat(dev.ring.direct).isTrue();
            drv.add(BUF, 16, false);

            // The worker's batch is stuck in a call (a delivery into a wedged device); when the call returns it
            // goes on with the chain it popped: pushes it used, a ring access after its stop gave up on it.
            CountDownLatch inCall = new CountDownLatch(1), callReturns = new CountDownLatch(1);
            AtomicInteger pushedHead = new AtomicInteger(-1);
            QueueService stuck = new QueueService() {
                final DescriptorChain chain = dev.newChain();
                boolean done;

                @Override public boolean poll() throws dev.jvbus.core.ring.QueueFault {
                    if (done || !dev.pop(chain)) return false;
                    inCall.countDown();
                    try {
                        callReturns.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    dev.pushUsed(chain.head(), 0);
                    dev.publishUsed();
                    pushedHead.set(chain.head());
                    done = true;
                    return true;
                }
                @Override public boolean hasWork() { return !done; }
                @Override public boolean armDoorbell() { return !done; }
                @Override public void disarmDoorbell() { }
            };
            QueueWorker worker = new QueueWorker("stuck", 0, stuck, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { })
                    .holding(busSide).start();
            assertThat(inCall.await(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();

            assertThat(worker.stop(Duration.ofMillis(50))).as("the stop gives up: the worker is left behind").isFalse();
            ours.close();   // the session ends and lets its memory go
            assertThat(ours.lifetime().outlivedOwner()).as("kept for the worker").isTrue();
            assertThat(ProcMaps.mappingsOfMemfd("lifetime-worker")).as("ours is still mapped").isEqualTo(2);

            callReturns.countDown();   // the call returns: the worker touches its ring, then exits
            await(() -> !worker.isAlive(), "the worker exits");
            assertThat(pushedHead.get()).as("its late ring access went through").isEqualTo(0);
            assertThat(SplitVirtqueueDriver.usedId(drv.pollUsed())).as("and landed in the ring").isEqualTo(0);
            await(() -> ProcMaps.mappingsOfMemfd("lifetime-worker") == 1, "our mapping goes once the worker has exited");
            assertThat(ours.lifetime().isUnmapped()).isTrue();
        }
    }

    /**
     * A worker that stops within its bound has let the memory go by the time stop returns, so the owner closing it
     * next is its last holder: unmapped at once, nothing "outlives its owner" (that is for a worker left behind).
     * Many times over: the release must happen before stop's wait ends, not just after it.
     */
    @Test
    void aWorkerThatStoppedInTimeHasLetItsMemoryGoWhenStopReturns() throws Exception {
        for (int i = 0; i < 200; i++) {
            try (Memfd peer = Memfd.create("lifetime-stop", MEM); EventFd kick = EventFd.create()) {
                Memfd ours = Memfd.adopt(OwnedFd.duplicate(peer.fd()), 0, MEM, MappingRule.SEALED_MEMFD);
                GuestMemory busSide = GuestMemory.of(new MemoryRegion(G, MEM, ours.segment(), ours.lifetime()));
                QueueService idle = new QueueService() {
                    @Override public boolean poll() { return false; }
                    @Override public boolean hasWork() { return false; }
                    @Override public boolean armDoorbell() { return true; }
                    @Override public void disarmDoorbell() { }
                };
                QueueWorker worker = new QueueWorker("idle-" + i, 0, idle, List.of(kick), DoorbellWait.Mode.ADAPTIVE, f -> { })
                        .holding(busSide).start();
                assertThat(worker.stop(Duration.ofSeconds(30))).as("an idle worker stops in time").isTrue();
                assertThat(ours.lifetime().users()).as("holders left when stop returned (round %d)", i).isZero();
                ours.close();
                assertThat(ours.lifetime().outlivedOwner()).isFalse();
                assertThat(ours.lifetime().isUnmapped()).as("unmapped by the owner's close (round %d)", i).isTrue();
            }
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
