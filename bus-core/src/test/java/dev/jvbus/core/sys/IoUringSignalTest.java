package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The io_uring signaller on its own: its shared SQ tail and CQ head, and its overflow path, with a
 * ring far smaller than the number of threads signalling through it.
 */
class IoUringSignalTest {

    /**
     * Rounds of many threads signalling at once through a one-slot ring: after each round the
     * eventfd is non-zero (no wakeup lost), and it counts every signal exactly unless the
     * completion queue overflowed (then several may count as one, never more than were sent).
     */
    @Test
    void aRingSmallerThanTheNumberOfSignallersLosesNoWakeup() throws Exception {
        int threads = 16, rounds = 500;
        try (EventFd target = EventFd.create()) {
            IoUringSignal ring = IoUringSignal.open(target.fd(), 1); // one SQ slot, two CQ entries
            try {
                CyclicBarrier barrier = new CyclicBarrier(threads + 1);
                List<Thread> signallers = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    signallers.add(Thread.ofPlatform().daemon().start(() -> {
                        try {
                            for (int r = 0; r < rounds; r++) {
                                barrier.await();   // go
                                ring.signal();
                                barrier.await();   // done
                            }
                        } catch (InterruptedException | BrokenBarrierException e) {
                            Thread.currentThread().interrupt();
                        }
                    }));
                }
                long exactRounds = 0;
                for (int r = 0; r < rounds; r++) {
                    long overflowsBefore = ring.overflowFlushes;
                    barrier.await(60, TimeUnit.SECONDS);
                    barrier.await(60, TimeUnit.SECONDS);
                    long count = target.drain();
                    assertThat(count).as("round %d: count after %d signals", r, threads).isBetween(1L, (long) threads);
                    if (ring.overflowFlushes == overflowsBefore) {
                        assertThat(count).as("round %d without overflow", r).isEqualTo(threads);
                        exactRounds++;
                    }
                }
                System.out.printf("io_uring signal, 1-slot ring, %d threads: %d of %d rounds without overflow%n",
                        threads, exactRounds, rounds);
                for (Thread s : signallers) s.join(TimeUnit.SECONDS.toMillis(10));
            } finally {
                ring.close();
            }
        }
    }

    /**
     * Many threads signal a one-slot ring flat out while another drains: the overflow path runs
     * (more threads between their enter and their release than the CQ has entries) and still no
     * signal is left queued, none is counted twice, and the count is exact unless it overflowed.
     */
    @Test
    void manyThreadsSignallingFlatOutThroughAOneSlotRingLeaveNothingQueued() throws Exception {
        int threads = 32, perThread = 10_000;
        long sent = (long) threads * perThread;
        try (EventFd target = EventFd.create()) {
            IoUringSignal ring = IoUringSignal.open(target.fd(), 1);
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Thread> signallers = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    signallers.add(Thread.ofPlatform().daemon().start(() -> {
                        try {
                            start.await();
                        } catch (InterruptedException e) {
                            return;
                        }
                        for (int i = 0; i < perThread; i++) ring.signal();
                    }));
                }
                start.countDown();
                long counted = 0;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
                for (Thread s : signallers) {
                    while (s.isAlive() && System.nanoTime() < deadline) {
                        counted += target.drain();
                        s.join(1);
                    }
                }
                assertThat(signallers).noneMatch(Thread::isAlive);
                counted += target.drain();
                System.out.printf("io_uring signal, 1-slot ring, %d threads flat out: %d overflow flushes, %d of %d counted%n",
                        threads, ring.overflowFlushes, counted, sent);
                assertThat(counted).isBetween(1L, sent);
                if (ring.overflowFlushes == 0) assertThat(counted).isEqualTo(sent);
                // Nothing left queued: one more signal counts exactly one.
                ring.signal();
                assertThat(target.drain()).isEqualTo(1);
            } finally {
                ring.close();
            }
        }
    }
}
