package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SequenceStream.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Two threads, one JVM, real memfd memory and real eventfd doorbells: 10 million sequence numbers. */
class SplitVirtqueueStreamTest {
    static final long BUFFERS_TOTAL = Long.getLong("jvbus.test.splitStream", 10_000_000L);

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {true, false})
    void tenMillionBuffersArriveOnceInOrderWithFewSignals(boolean eventIdx) throws Exception {
        try (Memfd mem = Memfd.create("split-stream", MEMORY_BYTES); EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            GuestMemory memory = SequenceStream.memory(mem.segment());
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, false, Notifier.of(kick));
            SplitVirtqueue dev = SplitVirtqueue.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, Notifier.of(call));
            Device device = new Device(dev, kick);
            Driver driver = new Driver(drv, eventIdx, call, memory);

            long t0 = System.nanoTime();
            FutureTask<Boolean> d = start("split-device", () -> device.run(BUFFERS_TOTAL));
            FutureTask<Long> p = start("split-driver", () -> driver.run(BUFFERS_TOTAL));
            assertThat(p.get(120, TimeUnit.SECONDS)).isEqualTo(BUFFERS_TOTAL);
            assertThat(d.get(10, TimeUnit.SECONDS)).isTrue();
            double secs = (System.nanoTime() - t0) / 1e9;

            assertThat(device.expected).isEqualTo(BUFFERS_TOTAL);
            assertThat(dev.buffersPopped()).isEqualTo(BUFFERS_TOTAL);
            assertThat(dev.buffersPushed()).isEqualTo(BUFFERS_TOTAL);
            assertThat(drv.buffersCollected()).isEqualTo(BUFFERS_TOTAL);
            assertThat(dev.isStopped()).isFalse();
            assertThat(drv.isStopped()).isFalse();
            // a lost wakeup would park a side until its wait timed out with its signal due
            assertThat(device.lostWakeups + driver.lostWakeups).as("lost wakeups (timeouts: %d)", device.timeouts + driver.timeouts).isZero();

            long signals = drv.kicksSent() + dev.notificationsSent();
            System.out.printf("split stream eventIdx=%s: %d buffers in %.2f s = %.2f M buffers/s; kicks %d (%.0f per M), "
                            + "interrupts %d (%.0f per M), kicks suppressed %d, interrupts suppressed %d, waits dev %d drv %d%n",
                    eventIdx, BUFFERS_TOTAL, secs, BUFFERS_TOTAL / secs / 1e6,
                    drv.kicksSent(), drv.kicksSent() * 1e6 / BUFFERS_TOTAL,
                    dev.notificationsSent(), dev.notificationsSent() * 1e6 / BUFFERS_TOTAL,
                    drv.kicksSuppressed(), dev.notificationsSuppressed(), device.waits, driver.waits);
            // every wait consumes at least one signal; a busy ring moves many buffers per signal
            assertThat(signals).isLessThan(BUFFERS_TOTAL / 10);
        }
    }
}
