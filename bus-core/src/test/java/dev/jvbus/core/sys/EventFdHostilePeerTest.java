package dev.jvbus.core.sys;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A peer shares the open file description of every eventfd it hands us (SCM_RIGHTS passes the
 * description, not a copy), so it can clear O_NONBLOCK on it with fcntl at any time and then fill
 * or empty the counter. None of that may make a bus thread wait: {@link EventFd#signal()} and
 * {@link EventFd#drain()} must return whatever the description's flags and the counter are.
 *
 * <p>The "peer" here is a second fd on the same description ({@code dup}, exactly what SCM_RIGHTS
 * gives a receiver), driven with plain blocking read/write. Calls that would block today run on a
 * daemon thread with a generous bound; a test that fails unblocks them before it ends.
 */
class EventFdHostilePeerTest {
    private static final long SATURATED = 0xffff_ffff_ffff_fffeL; // the most a write(2) may leave in the counter
    private static final long BOUND_SECONDS = 10;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment word = arena.allocate(8, 8);
    private final List<Runnable> cleanups = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        for (int i = cleanups.size() - 1; i >= 0; i--) cleanups.get(i).run();
        arena.close();
    }

    /** The peer's end: a raw eventfd, blocking from the start, so the test controls the description's flags. */
    private int peerEventFd() {
        int fd = Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC), "eventfd");
        cleanups.add(() -> LibC.close(fd));
        return fd;
    }

    /** What the bus receives: the same description under another number, adopted as the connectors do. */
    private EventFd adoptShared(int peerFd) {
        EventFd bus = EventFd.adopt(OwnedFd.duplicate(peerFd));
        cleanups.add(bus::close);
        return bus;
    }

    /** The peer clears O_NONBLOCK on the shared description, after the bus adopted (and set it). */
    private static void peerMakesBlocking(int peerFd) {
        int flags = Errno.check(LibC.fcntl(peerFd, LibC.F_GETFL, 0), "F_GETFL");
        Errno.check(LibC.fcntl(peerFd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK), "F_SETFL");
        assertThat(LibC.fcntl(peerFd, LibC.F_GETFL, 0) & LibC.O_NONBLOCK).as("O_NONBLOCK on the shared description").isZero();
    }

    private synchronized void peerWrites(int peerFd, long value) {
        word.set(ValueLayout.JAVA_LONG, 0, value);
        assertThat(LibC.write(peerFd, word.address(), 8)).isEqualTo(8);
    }

    /** Reads the counter through the peer's end; blocks if it is 0, so call only when it is not. */
    private synchronized long peerReads(int peerFd) {
        assertThat(LibC.read(peerFd, word.address(), 8)).isEqualTo(8);
        return word.get(ValueLayout.JAVA_LONG, 0);
    }

    /** Runs {@code call} on a daemon thread and waits for it within the bound; a call that blocks fails the test. */
    private static <T> T withinBound(String what, Supplier<T> call) throws Exception {
        FutureTask<T> task = new FutureTask<>(call::get);
        Thread.ofPlatform().daemon().name(what).start(task);
        try {
            return task.get(BOUND_SECONDS, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError(what + " did not return within " + BOUND_SECONDS + " s: it waits on the peer's fd", e);
        }
    }

    @Test
    void signalReturnsWhenThePeerMadeTheDescriptionBlockingAndFilledTheCounter() throws Exception {
        int peer = peerEventFd();
        EventFd bus = adoptShared(peer);
        peerMakesBlocking(peer);
        withinBound("signal", () -> { bus.signal(); bus.signal(); bus.signal(); return null; });
        assertThat(peerReads(peer)).as("each signal still counts one").isEqualTo(3);

        peerWrites(peer, SATURATED);
        cleanups.add(() -> { if (LibC.fcntl(peer, LibC.F_SETFL, LibC.O_NONBLOCK) == 0) LibC.read(peer, word.address(), 8); });
        withinBound("signal on a full blocking eventfd", () -> { bus.signal(); return null; });
        withinBound("a second signal", () -> { bus.signal(); return null; });

        // The doorbell still rings on the peer's side: readable, and the count never went down.
        try (Epoll epoll = Epoll.create(1)) {
            epoll.add(peer, Epoll.IN, 1);
            assertThat(epoll.wait((int) TimeUnit.SECONDS.toMillis(BOUND_SECONDS))).isEqualTo(1);
        }
        assertThat(Long.compareUnsigned(peerReads(peer), SATURATED)).as("count after saturation and two signals").isGreaterThanOrEqualTo(0);
    }

    @Test
    void drainReturnsZeroWhenThePeerMadeTheDescriptionBlockingAndEmptiedTheCounter() throws Exception {
        int peer = peerEventFd();
        EventFd bus = adoptShared(peer);
        bus.signal();
        peerMakesBlocking(peer);
        assertThat(peerReads(peer)).as("the peer takes the count first").isEqualTo(1);
        cleanups.add(() -> { word.set(ValueLayout.JAVA_LONG, 0, 1L); LibC.write(peer, word.address(), 8); }); // frees a blocked drain

        assertThat(withinBound("drain of an empty blocking eventfd", bus::drain)).isZero();

        peerWrites(peer, 5);
        assertThat(withinBound("drain", bus::drain)).isEqualTo(5);
        assertThat(withinBound("drain again", bus::drain)).isZero();
    }

    @Test
    void withoutIoUringAFullCounterIsStillNotWaitedOn() throws Exception {
        int peer = peerEventFd();
        EventFd bus = adoptShared(peer);
        bus.signalByPollAndWrite(); // the fallback used where io_uring is not available
        peerMakesBlocking(peer);
        peerWrites(peer, SATURATED);
        cleanups.add(() -> { if (LibC.fcntl(peer, LibC.F_SETFL, LibC.O_NONBLOCK) == 0) LibC.read(peer, word.address(), 8); });

        withinBound("fallback signal on a full blocking eventfd", () -> { bus.signal(); return null; });
        assertThat(peerReads(peer)).as("a full counter already wakes the reader").isEqualTo(SATURATED);

        withinBound("fallback signal", () -> { bus.signal(); return null; });
        assertThat(peerReads(peer)).isEqualTo(1);
    }

    /**
     * Many threads signal one peer eventfd at once. First the peer made the description blocking
     * and filled the counter, and reads nothing: every signaller still finishes. Then a waiter
     * drains it the way a worker does (epoll, then drain) while they signal again: every signal is
     * counted exactly once, so none was lost, and the waiter sees the last one.
     */
    @Test
    void concurrentSignallersNeverWaitAndLoseNoSignal() throws Exception {
        int threads = 16, perThread = 5_000;
        long total = (long) threads * perThread;
        int peer = peerEventFd();
        EventFd bus = adoptShared(peer);
        peerMakesBlocking(peer);
        peerWrites(peer, SATURATED);
        cleanups.add(() -> { if (LibC.fcntl(peer, LibC.F_SETFL, LibC.O_NONBLOCK) == 0) LibC.read(peer, word.address(), 8); });

        signalFromManyThreads(bus, threads, 100, BOUND_SECONDS, "signallers on a full counter nobody drains");
        assertThat(Long.compareUnsigned(peerReads(peer), SATURATED)).isGreaterThanOrEqualTo(0);

        AtomicLong drained = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        Thread waiter = Thread.ofPlatform().daemon().name("drainer").start(() -> {
            try (Epoll epoll = Epoll.create(1)) {
                epoll.add(bus, Epoll.IN, 0);
                while (!stop.get()) {
                    if (epoll.wait(100) > 0) drained.addAndGet(bus.drain());
                }
            }
        });
        signalFromManyThreads(bus, threads, perThread, 60, "signallers while a waiter drains");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (drained.get() < total && System.nanoTime() < deadline) Thread.sleep(5);
        stop.set(true);
        waiter.join(TimeUnit.SECONDS.toMillis(BOUND_SECONDS));
        assertThat(drained.get()).as("signals drained (none lost, none doubled)").isEqualTo(total);
    }

    private static void signalFromManyThreads(EventFd bus, int threads, int perThread, long seconds, String what) throws Exception {
        ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> signallers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            signallers.add(Thread.ofPlatform().daemon().name("signaller-" + t).start(() -> {
                try {
                    start.await();
                    for (int i = 0; i < perThread; i++) bus.signal();
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        start.countDown();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        for (Thread s : signallers) s.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        assertThat(signallers).as(what + ": all finished within " + seconds + " s").noneMatch(Thread::isAlive);
        assertThat(failures).as(what).isEmpty();
    }

    @Test
    void closeRacingWithSignallersNeverThrowsNorSignalsTheFdThatReusesItsNumber() throws Exception {
        closeRace("an eventfd we created", EventFd::create);
        closeRace("an adopted peer eventfd", () -> EventFd.adopt(OwnedFd.of(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC), "eventfd"))));
    }

    private void closeRace(String kind, Supplier<EventFd> open) throws Exception {
        long openBefore = openAnonInodes();
        int rounds = 300, threads = 4, reused = 0;
        for (int round = 0; round < rounds; round++) {
            EventFd e = open.get();
            e.signal(); // sets up whatever the first signal sets up, before the race
            int number = e.fd();
            AtomicBoolean go = new AtomicBoolean(true);
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            CountDownLatch running = new CountDownLatch(threads);
            List<Thread> signallers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                signallers.add(Thread.ofPlatform().daemon().start(() -> {
                    running.countDown();
                    try {
                        while (go.get()) e.signal();
                    } catch (Throwable x) {
                        failures.add(x);
                    }
                }));
            }
            running.await();
            e.close();
            // Take freed numbers as soon as they are free, as another session's accept or recvmsg would,
            // while the signallers keep going.
            int[] next = new int[16];
            for (int i = 0; i < next.length; i++) {
                next[i] = Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), "eventfd");
                Thread.yield();
            }
            go.set(false);
            for (Thread s : signallers) s.join(TimeUnit.SECONDS.toMillis(BOUND_SECONDS));
            assertThat(failures).as(kind + ": exceptions from signal() racing close()").isEmpty();
            for (int fd : next) {
                if (fd == number) {
                    reused++;
                    long rc = LibC.read(fd, word.address(), 8);
                    assertThat(rc).as(kind + ": round %d, fd %d reused after close was signalled (count %d)",
                            round, fd, rc == 8 ? word.get(ValueLayout.JAVA_LONG, 0) : 0).isNegative();
                }
                LibC.close(fd);
            }
        }
        assertThat(reused).as(kind + ": rounds where the closed number was reused (else the test proves nothing)").isPositive();
        assertThat(openAnonInodes()).as(kind + ": eventfds and rings open after every round closed").isEqualTo(openBefore);
    }

    /** Open eventfds and io_urings of this process. */
    private static long openAnonInodes() throws java.io.IOException {
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/fd"))) {
            return fds.map(p -> {
                try {
                    return java.nio.file.Files.readSymbolicLink(p).toString();
                } catch (java.io.IOException e) {
                    return "";
                }
            }).filter(t -> t.equals("anon_inode:[eventfd]") || t.equals("anon_inode:[io_uring]")).count();
        }
    }
}
