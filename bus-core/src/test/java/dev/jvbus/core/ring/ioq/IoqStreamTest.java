package dev.jvbus.core.ring.ioq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two threads, one memfd, two real eventfds through the shm-signal: every sequence number
 * arrives once and in order, and suppression makes signals far rarer than buffers.
 */
class IoqStreamTest {
    static final int COUNT = 1024;

    @Test
    void tenMillionBuffersWithSuppression() throws Exception {
        Result r = run(10_000_000, true);
        assertThat(r.kicks).as("kicks with suppression").isLessThan(10_000_000 / 10);
        assertThat(r.lostWakeups).isZero();
    }

    @Test
    void everyBufferSignalsWithSuppressionForcedOff() throws Exception {
        // Fewer buffers: each one costs an eventfd write (a syscall) in each direction's inject.
        Result r = run(1_000_000, false);
        assertThat(r.kicks).as("a kick per buffer").isEqualTo(1_000_000);
        assertThat(r.lostWakeups).isZero();
    }

    record Result(long kicks, long lostWakeups) {}

    static Result run(long n, boolean suppress) throws Exception {
        try (TestMemory m = new TestMemory(); EventFd kick = EventFd.create(); EventFd call = EventFd.create();
             ExecutorService pool = Executors.newFixedThreadPool(2)) {
            IoqDriver drv = IoqDriver.create(0, m.memory, TestMemory.RING_A, COUNT, Notifier.of(kick), suppress);
            IoqDevice dev = IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.of(call), suppress);
            MemorySegment bufs = m.at(TestMemory.BUFS_A, (long) COUNT * IoqPump.BUF);
            SpinThenBlock consWait = new SpinThenBlock(kick, IoqPump.SPINS);
            SpinThenBlock prodWait = new SpinThenBlock(call, IoqPump.SPINS);
            long t0 = System.nanoTime();
            Future<Long> consumer = pool.submit(() -> {
                try (consWait) {
                    return IoqPump.consume(dev, consWait, 0, n);
                }
            });
            Future<?> producer = pool.submit(() -> {
                try (prodWait) {
                    IoqPump.produce(drv, prodWait, bufs, TestMemory.BUFS_A, n);
                }
                return null;
            });
            assertThat(consumer.get(120, TimeUnit.SECONDS)).isEqualTo(n);
            producer.get(120, TimeUnit.SECONDS);
            long nanos = System.nanoTime() - t0;
            System.out.println(IoqPump.figures("IOQ single JVM, suppression " + (suppress ? "on" : "forced off"),
                    n, nanos, drv, dev, prodWait, consWait));
            assertThat(dev.buffers).isEqualTo(n);
            assertThat(drv.completions).isEqualTo(n);
            assertThat(drv.fault()).isNull();
            assertThat(dev.fault()).isNull();
            return new Result(drv.signal().signalsSent, prodWait.lostWakeups + consWait.lostWakeups);
        }
    }
}
