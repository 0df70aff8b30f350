package dev.jvbus.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.ioq.IoqDevice;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * A queue's counters belong to the queue, not to one ring: every ring built for it counts into them and
 * attaches to them (so an operator reads its indices), a restored ring carries on the same counts, a
 * fault is counted by reason, and a worker counts the kicks its doorbell held. Real memfds and eventfds.
 */
class QueueCountersTest {
    static final long MEM = 1 << 20;

    @Test
    void aSplitRingCountsBuffersBytesAndNotificationsAndARestoredRingCarriesOnTheSameCounts() throws Exception {
        try (Memfd mem = Memfd.create("counters-split", MEM)) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
            QueueCounters counters = new QueueCounters();
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE, counters);
            assertThat(counters.ring()).as("the ring attached itself").isSameAs(dev);
            DescriptorChain chain = dev.newChain();
            BufferList both = new BufferList(2);
            for (int i = 0; i < 3; i++) drv.add(both.clear().readable(0x8000 + i * 256L, 100).writable(0x9000 + i * 256L, 200));
            drv.add(0xa000, 300, true);   // a fourth, taken but not returned yet
            for (int i = 0; i < 3; i++) {
                assertThat(dev.pop(chain)).isTrue();
                dev.pushUsed(chain.head(), 50);      // the device read 100 and wrote 50
            }
            dev.publishUsed();
            assertThat(dev.pop(chain)).isTrue();
            assertThat(counters.buffers()).isEqualTo(3);
            assertThat(counters.bytes()).as("readable bytes plus the used length, per returned buffer").isEqualTo(3 * (100 + 50));
            assertThat(counters.notificationsSent() + counters.notificationsSuppressed()).as("one decision per publish").isEqualTo(1);
            assertThat(dev.nextAvail()).isEqualTo(4);
            assertThat(dev.nextUsed()).isEqualTo(3);
            assertThat(dev.inFlight()).isEqualTo(1);
            drv.add(0xb000, 300, true);
            assertThat(dev.available()).as("made available, not taken").isEqualTo(1);

            QueueState saved = dev.save();
            counters.detach();
            SplitVirtqueue again = SplitVirtqueue.restore(saved, gm, false, false, Notifier.NONE, counters);
            assertThat(counters.ring()).isSameAs(again);
            assertThat(again.pop(chain)).isTrue();              // the in-flight one, handed out again
            again.pushUsed(chain.head(), 300);
            again.publishUsed();
            assertThat(counters.buffers()).as("the count goes on across rings").isEqualTo(4);
            assertThat(counters.bytes()).isEqualTo(3 * 150 + 300);
            assertThat(counters.faults()).isZero();
        }
    }

    @Test
    void aFaultIsCountedByItsReasonOnceAndARingThatCannotBeBuiltIsCountedToo() throws Exception {
        try (Memfd mem = Memfd.create("counters-fault", MEM)) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
            QueueCounters counters = new QueueCounters();
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE, counters);
            drv.add(MEM + 0x1000, 64, false);   // outside guest memory
            DescriptorChain chain = dev.newChain();
            assertThatThrownBy(() -> dev.pop(chain)).isInstanceOf(QueueFault.class);
            assertThatThrownBy(() -> dev.pop(chain)).isInstanceOf(QueueFault.class);   // rethrown, not found again
            assertThat(counters.faults(QueueFault.Reason.BUFFER_OUT_OF_RANGE)).isEqualTo(1);
            assertThat(counters.faults()).isEqualTo(1);

            assertThatThrownBy(() -> SplitVirtqueue.create(0, 16, MEM - 8, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE, counters))
                    .isInstanceOf(QueueFault.class);
            assertThat(counters.faults(QueueFault.Reason.BAD_RING_ADDRESS)).isEqualTo(1);
        }
    }

    @Test
    void anIoqRingCountsCompletedDescriptorsWithTheirLengthsAndEachNotifyDecision() throws Exception {
        try (Memfd mem = Memfd.create("counters-ioq", MEM)) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
            QueueCounters counters = new QueueCounters();
            IoqDriver drv = IoqDriver.create(0, gm, 0x1000, 16, Notifier.NONE, true);
            IoqDevice dev = IoqDevice.attach(0, gm, 0x1000, 16, Notifier.NONE, true, counters);
            assertThat(counters.ring()).isSameAs(dev);
            for (int i = 0; i < 3; i++) drv.offer(i, 0x10_000 + i * 2048L, 1500);
            drv.kick();
            for (int i = 0; i < 3; i++) {
                assertThat(dev.poll()).isNotNull();
                dev.completeLater(60 + i);
            }
            assertThat(counters.buffers()).as("counted when handed back").isZero();
            dev.publishCompleted();
            dev.notifyDriver();
            assertThat(counters.buffers()).isEqualTo(3);
            assertThat(counters.bytes()).isEqualTo(60 + 61 + 62);
            assertThat(counters.notificationsSent() + counters.notificationsSuppressed()).isEqualTo(1);
            assertThat(dev.inFlight()).isZero();
            assertThat(dev.nextUsed()).isEqualTo(3);
        }
    }

    @Test
    void aWorkerCountsTheKicksItsDoorbellHeldIntoTheQueuesCounters() throws Exception {
        QueueCounters counters = new QueueCounters();
        AtomicInteger polls = new AtomicInteger();
        try (EventFd kick = EventFd.create()) {
            QueueService idle = new QueueService() {
                @Override public boolean poll() { polls.incrementAndGet(); return false; }

                @Override public boolean hasWork() { return false; }

                @Override public boolean armDoorbell() { return false; }

                @Override public void disarmDoorbell() { }
            };
            QueueWorker w = new QueueWorker("kicks", 0, idle, List.of(kick), List.of(counters), DoorbellWait.Mode.ADAPTIVE, f -> { }).start();
            try {
                kick.signal();
                waitUntil(() -> counters.kicks() == 1);
                kick.signal();
                kick.signal();
                waitUntil(() -> counters.kicks() == 3);
                assertThat(counters.kicks()).isEqualTo(3);
            } finally {
                w.stop(Duration.ofSeconds(30));
            }
        }
    }

    private static void waitUntil(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("not within 60 s");
            Thread.sleep(5);
        }
    }
}
