package dev.jvbus.core.sys;

import dev.jvbus.core.signal.Notifier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A Linux eventfd used as a doorbell: {@link #signal()} adds 1, {@link #drain()} reads and resets
 * the count. Non-blocking; waiting is done with epoll (see the signal package), so one thread can
 * wait on many doorbells. The 8-byte I/O buffer is allocated once per eventfd, never per signal.
 */
public final class EventFd implements Notifier, AutoCloseable {
    private final int fd;
    private final Arena arena = Arena.ofShared();
    // Two buffers: the write buffer holds 1 from construction on and is never modified, so
    // signalling threads and the draining thread never race on a scratch word.
    private final MemorySegment one = arena.allocate(8, 8);
    private final long oneAddress = one.address();
    private final MemorySegment counter = arena.allocate(8, 8);
    private final long counterAddress = counter.address();

    private volatile boolean closed;

    private EventFd(int fd) {
        this.fd = fd;
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    public static EventFd create() {
        return new EventFd(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), "eventfd"));
    }

    /** Takes ownership of an eventfd received from a peer. */
    public static EventFd adopt(int fd) {
        return new EventFd(fd);
    }

    /**
     * Duplicates another process's eventfd into this one with {@code pidfd_getfd(2)} (same user,
     * ptrace-permitted). For tests and tools that pair two processes without a socket; connectors
     * receive fds with SCM_RIGHTS instead.
     */
    public static EventFd fromPeer(long pid, int peerFd) {
        return adopt(Fds.fromPeer(pid, peerFd));
    }

    public int fd() { return fd; }

    @Override
    public void signal() {
        long rc = LibC.write(fd, oneAddress, 8);
        if (rc < 0) {
            int e = Errno.last();
            // EAGAIN: the counter is at its maximum, so the reader will wake anyway. EBADF after close: ignore.
            if (e != Errno.EAGAIN && !(closed && e == Errno.EBADF)) throw Errno.failure("eventfd write", e);
        }
    }

    /** Reads and clears the counter; returns how many signals arrived since the last drain (0 if none). */
    public long drain() {
        // Only the owning worker drains, so the counter buffer has a single user.
        long rc = LibC.read(fd, counterAddress, 8);
        if (rc < 0) {
            int e = Errno.last();
            if (e == Errno.EAGAIN) return 0;
            throw Errno.failure("eventfd read", e);
        }
        return counter.get(ValueLayout.JAVA_LONG, 0);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        LibC.close(fd);
        arena.close();
    }
}
