package dev.jvbus.core.ring.virtio;

import com.sun.jna.Native;
import com.sun.jna.Platform;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Test-only: blocks on one eventfd with poll(2) until it is readable or a timeout passes. The bus's
 * real waiter (epoll, many doorbells per thread) belongs to the signal package; this is the minimum
 * the ring tests need to sleep without losing a signal. One instance per waiting thread.
 */
final class EventFdWait {
    static {
        Native.register(EventFdWait.class, Platform.C_LIBRARY_NAME);
    }

    private static native int poll(long fds, long nfds, int timeoutMillis);

    private static final short POLLIN = 1;
    private final MemorySegment pollfd = Arena.ofAuto().allocate(8, 8);   // struct pollfd { int fd; short events, revents; }

    EventFdWait(int fd) {
        pollfd.set(ValueLayout.JAVA_INT, 0, fd);
        pollfd.set(ValueLayout.JAVA_SHORT, 4, POLLIN);
    }

    /** True if the eventfd became readable, false on timeout (or EINTR). Does not drain it. */
    boolean await(int timeoutMillis) {
        pollfd.set(ValueLayout.JAVA_SHORT, 6, (short) 0);
        return poll(pollfd.address(), 1, timeoutMillis) > 0;
    }
}
