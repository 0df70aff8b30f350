package dev.jvbus.core.sys;

import dev.jvbus.core.signal.Notifier;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Linux eventfd used as a doorbell: {@link #signal()} adds 1, {@link #drain()} reads and resets
 * the count. Non-blocking; waiting is done with epoll (see {@code signal.DoorbellWait}), so one
 * thread can wait on many doorbells. The 8-byte I/O buffers are allocated once per eventfd, never
 * per signal.
 *
 * <p>Threads: any number of threads may {@link #signal()}; one thread at a time may {@link #drain()}.
 * Close after the signallers have stopped: a signal racing with close is tolerated (ignored), but
 * the kernel may reuse the fd number at once, so a signaller that keeps going after close could in
 * principle write into an unrelated fd.
 */
public final class EventFd implements Notifier, Pollable, AutoCloseable {
    private final int fd;
    // Two buffers: the write buffer holds 1 from construction on and is never modified, so
    // signalling threads and the draining thread never race on a scratch word. An automatic arena
    // keeps them alive as long as this object, so a signal racing with close never touches freed memory.
    private final MemorySegment one;
    private final long oneAddress;
    private final MemorySegment counter;
    private final long counterAddress;

    private final AtomicBoolean closed = new AtomicBoolean();

    private EventFd(int fd) {
        this.fd = fd;
        Arena arena = Arena.ofAuto();
        this.one = arena.allocate(8, 8);
        this.oneAddress = one.address();
        this.counter = arena.allocate(8, 8);
        this.counterAddress = counter.address();
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    public static EventFd create() {
        return new EventFd(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), "eventfd"));
    }

    /**
     * Takes ownership of an eventfd received from a peer. Refuses an fd that is not an eventfd
     * (the fd stays the caller's then). Makes it non-blocking, because {@link #drain()} must never
     * block a worker; note that O_NONBLOCK belongs to the open file description, which the peer
     * shares (peers create their doorbells non-blocking anyway: QEMU does, and so do we).
     */
    public static EventFd adopt(OwnedFd owned) {
        int fd = owned.number();
        if (!FdStat.isEventFd(fd)) {
            throw new IllegalArgumentException("fd " + fd + " is not an eventfd (" + describe(fd) + ")");
        }
        int flags = Errno.check(LibC.fcntl(fd, LibC.F_GETFL, 0), "fcntl(F_GETFL)");
        if ((flags & LibC.O_NONBLOCK) == 0) {
            Errno.check(LibC.fcntl(fd, LibC.F_SETFL, flags | LibC.O_NONBLOCK), "fcntl(F_SETFL, O_NONBLOCK)");
        }
        return new EventFd(owned.release());
    }

    private static String describe(int fd) {
        try {
            return FdStat.of(fd).kind().toString();
        } catch (Errno.SysException e) {
            return e.getMessage();
        }
    }

    /**
     * Duplicates another process's eventfd into this one with {@code pidfd_getfd(2)} (same user,
     * ptrace-permitted). For tests and tools that pair two processes without a socket; connectors
     * receive fds with SCM_RIGHTS instead.
     */
    public static EventFd fromPeer(long pid, int peerFd) {
        try (OwnedFd fd = OwnedFd.fromPeer(pid, peerFd)) {
            return adopt(fd);
        }
    }

    @Override
    public int fd() { return fd; }

    @Override
    public void signal() {
        if (closed.getPlain()) return;
        long rc = LibC.write(fd, oneAddress, 8);
        if (rc < 0) {
            int e = Errno.last();
            // EAGAIN: the counter is at its maximum, so the reader will wake anyway. EBADF after close: ignore.
            if (e != Errno.EAGAIN && !(closed.get() && e == Errno.EBADF)) throw Errno.failure("eventfd write", e);
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

    /** Closes the fd once, however many threads call this. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) LibC.close(fd);
    }
}
