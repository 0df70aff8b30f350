package dev.jvbus.core.ring.ioq;

import dev.jvbus.core.sys.EventFd;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Test-only waiting side: with the shm-signal masked, spin a bounded number of times on its dirty
 * flag; then unmask, re-check, and block in poll(2) on the eventfd (the real epoll waiter lives in the signal package). Counts
 * how often it blocked, and "lost wakeups": a 1 s timeout that ends with the ring dirty, i.e.
 * work was there but no signal came. One instance per waiting thread.
 */
final class SpinThenBlock implements AutoCloseable {
    private static final MethodHandle POLL = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("poll").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    private static final short POLLIN = 1;

    private final EventFd fd;
    private final int spins;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment pollfd = arena.allocate(8, 4);

    long blocks;
    long timeouts;
    long lostWakeups;

    SpinThenBlock(EventFd fd, int spins) {
        this.fd = fd;
        this.spins = spins;
        pollfd.set(ValueLayout.JAVA_INT, 0, fd.fd());
        pollfd.set(ValueLayout.JAVA_SHORT, 4, POLLIN);
    }

    /** Returns when the signal is dirty or the eventfd fired (or after a 1 s timeout). */
    void await(ShmSignal signal) {
        for (int i = 0; i < spins; i++) {
            if (signal.isDirty()) return;
            Thread.onSpinWait();
        }
        // Arm the signal only now: while we run or spin it stays masked, so the peer only marks
        // us dirty. enable() re-checks dirty after a full fence (the peer's inject does the mirror).
        if (signal.enable()) {
            signal.disable();
            return;
        }
        blocks++;
        int rc;
        try {
            rc = (int) POLL.invokeExact(pollfd, 1L, 1000);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        if (rc == 0) {
            timeouts++;
            if (signal.isDirty()) lostWakeups++;
        }
        signal.disable();
        fd.drain();
    }

    @Override
    public void close() {
        arena.close();
    }
}
