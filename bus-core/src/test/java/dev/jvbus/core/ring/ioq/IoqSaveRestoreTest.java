package dev.jvbus.core.ring.ioq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Live save/restore: a producer keeps offering while the device worker is paused, its state
 * saved, the device object thrown away and a new one restored from the QueueState over the
 * same shared memory. Every other pause leaves buffers taken but not acted on (in flight); the
 * restored device offers those again. Every sequence number must arrive exactly once, in order.
 */
class IoqSaveRestoreTest {
    static final int COUNT = 64;
    static final long N = 2_000_000;
    static final int PAUSES = 8;

    final AtomicReference<IoqDevice> holder = new AtomicReference<>();
    /** The worker pauses itself once it has consumed this many, so every pause lands however the threads are scheduled. */
    volatile long pauseAt = target(0);
    volatile boolean leaveInFlight;
    volatile long progress;
    final Semaphore paused = new Semaphore(0);
    final Semaphore resumed = new Semaphore(0);

    static long target(int pause) {
        return (pause + 1) * N / (PAUSES + 1);
    }

    @Test
    void pauseSaveDiscardRestoreContinue() throws Exception {
        try (TestMemory m = new TestMemory(); EventFd kick = EventFd.create(); EventFd call = EventFd.create();
             ExecutorService pool = Executors.newFixedThreadPool(2)) {
            IoqDriver drv = IoqDriver.create(0, m.memory, TestMemory.RING_A, COUNT, Notifier.of(kick), true);
            holder.set(IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.of(call), true));
            MemorySegment bufs = m.at(TestMemory.BUFS_A, (long) COUNT * IoqPump.BUF);

            Future<Long> consumer = pool.submit(() -> {
                try (SpinThenBlock wait = new SpinThenBlock(kick, IoqPump.SPINS)) {
                    return consume(wait);
                }
            });
            Future<?> producer = pool.submit(() -> {
                try (SpinThenBlock wait = new SpinThenBlock(call, IoqPump.SPINS)) {
                    IoqPump.produce(drv, wait, bufs, TestMemory.BUFS_A, N);
                }
                return null;
            });

            List<QueueState> saved = new ArrayList<>();
            for (int p = 0; p < PAUSES; p++) {
                assertThat(paused.tryAcquire(60, TimeUnit.SECONDS)).as("worker paused at " + pauseAt).isTrue();
                assertThat(progress).as("the worker paused at its mark").isEqualTo(pauseAt);
                QueueState s = holder.getAndSet(null).save();   // quiesced: the worker is parked
                saved.add(s);
                holder.set(IoqDevice.restore(s, m.memory, Notifier.of(call)));
                // What the next pause does, set before the worker can reach it: every other one leaves buffers in flight.
                leaveInFlight = (p + 1) % 2 == 1;
                pauseAt = p + 1 < PAUSES ? target(p + 1) : Long.MAX_VALUE;
                resumed.release();
            }
            assertThat(consumer.get(120, TimeUnit.SECONDS)).isEqualTo(N);
            producer.get(120, TimeUnit.SECONDS);
            assertThat(drv.completions).isEqualTo(N);
            assertThat(holder.get().fault()).isNull();
            assertThat(saved).anySatisfy(s -> assertThat(s.inFlight()).isNotEmpty());
            assertThat(saved).allSatisfy(s -> assertThat(s.availAddr()).isEqualTo(TestMemory.RING_A));
            System.out.println("IOQ save/restore: " + N + " buffers, " + PAUSES + " live restores, in flight at save: "
                    + saved.stream().map(s -> s.inFlight().size()).toList() + ", positions: "
                    + saved.stream().map(s -> s.nextUsed() + "/" + s.nextAvail()).toList());
        }
    }

    /** The device worker: checks order and uniqueness; parks when asked, then picks up the restored device. */
    long consume(SpinThenBlock wait) throws Exception {
        long expected = 0;
        IoqDevice dev = holder.get();
        dev.signal().disable();
        while (expected < N) {
            if (expected >= pauseAt) {
                if (leaveInFlight)   // taken but not acted on: the restored device must offer them again
                    for (int k = 0; k < 3 && dev.poll() != null; k++) { }
                paused.release();
                resumed.acquire();
                dev = holder.get();
                dev.signal().disable();
                continue;
            }
            ShmSignal sig = dev.signal();
            sig.beginPass();
            int got = 0;
            IoqDevice.Buffer b;
            while (expected < pauseAt && (b = dev.poll()) != null) {
                long v = b.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, b.offset());
                if (v != expected) throw new AssertionError("expected sequence " + expected + ", got " + v);
                expected++;
                dev.complete(8);
                got++;
            }
            progress = expected;
            if (got > 0) {
                dev.notifyDriver();
                continue;
            }
            if (expected >= pauseAt || sig.endPass()) continue;
            wait.await(sig);
        }
        return expected;
    }
}
