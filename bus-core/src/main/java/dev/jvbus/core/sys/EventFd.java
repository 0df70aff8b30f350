package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A Linux eventfd used as a doorbell: {@link #signal()} adds 1, {@link #drain()} reads and resets
 * the count. Waiting is done with epoll (see {@code signal.DoorbellWait}), so one thread can wait
 * on many doorbells; neither call ever waits.
 *
 * <h2>Never waiting on a peer's eventfd</h2>
 * An eventfd a peer passed us ({@link #adopt}) shares its open file description with the peer,
 * and O_NONBLOCK lives on the description: the peer can clear it at any moment, and then write(2)
 * blocks once the peer has filled the counter and read(2) blocks once it has emptied it. An
 * eventfd cannot be reopened for a description of our own. So neither call depends on that flag:
 * <ul>
 * <li>{@link #drain()} reads with preadv2(RWF_NOWAIT), which is non-blocking for that one call
 *     whatever the description says (EAGAIN when the counter is 0; eventfd has it since Linux 5.12).
 * <li>{@link #signal()} on a peer's eventfd goes through an {@link IoUringSignal}: an io_uring with
 *     the eventfd registered, so the kernel's eventfd_signal() adds the 1, and that saturates at
 *     2^64-1 instead of blocking. The ring is set up on the first signal, so a kick the bus only
 *     drains never costs one. Still one syscall per signal, as the write was.
 * <li>An eventfd we {@link #create()} has a description only we hold (and whoever we chose to
 *     give it to), non-blocking from creation: it signals with a plain write(2).
 * </ul>
 * Fallbacks, where the kernel lacks a feature (logged once): without io_uring (disabled by the
 * io_uring_disabled sysctl or seccomp, or a kernel before 5.5) a peer's eventfd is signalled with
 * poll(POLLOUT, 0) and then a write only if there is room; a full counter needs no signal, its
 * reader wakes anyway. That is racy, and said so: a peer that clears O_NONBLOCK and fills the
 * counter between the two calls blocks the signalling thread until someone reads. Without
 * RWF_NOWAIT, drain likewise polls (POLLIN) before it reads. Setting O_NONBLOCK again before each
 * call would not close that window, only move it.
 *
 * <h2>Threads and close</h2>
 * Any number of threads may {@link #signal()}; one at a time may {@link #drain()}; any thread may
 * {@link #close()}, once or many times. Each signal and drain holds a share of this object while it
 * runs, and the fds (the eventfd and its ring) are closed by whoever leaves last: so close never
 * takes an fd from under a running call, and a call after close does nothing. Neither can touch
 * an fd number the kernel has meanwhile given to someone else. This costs two atomic updates per
 * call; the I/O buffers are allocated once per eventfd, never per signal.
 */
public final class EventFd implements Pollable, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(EventFd.class.getName());

    /** False once preadv2(RWF_NOWAIT) turned out unsupported on eventfds here (Linux before 5.12). */
    private static volatile boolean nowaitReads = true;
    /** One struct pollfd per thread, for the fallbacks only. */
    private static final ThreadLocal<MemorySegment> POLLFD =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(LibC.POLLFD_SIZE, 8));

    private final int fd;
    /** Shares its description with a peer (adopted): signal without write(2), see the class comment. */
    private final boolean peers;
    // Two buffers: the write buffer holds 1 from construction on and is never modified, so
    // signalling threads and the draining thread never race on a scratch word. The automatic arena
    // keeps them as long as this object. The iovec points preadv2 at the counter buffer.
    private final MemorySegment one;
    private final long oneAddress;
    private final MemorySegment counter;
    private final long counterAddress;
    private final long counterIov;

    /** A peer eventfd's ring, made by the first signal; null before, or for good with {@link #pollThenWrite}. */
    private volatile IoUringSignal ring;
    private volatile boolean pollThenWrite;
    private final Object ringSetup = new Object();

    // 1 for the owner until close, +1 for each signal or drain running. Whoever brings it to 0 closes the fds.
    private final AtomicInteger users = new AtomicInteger(1);
    private final AtomicBoolean closed = new AtomicBoolean();

    /** An eventfd shared with a peer: what {@link #adopt} makes. */
    private EventFd(int fd) {
        this(fd, true);
    }

    private EventFd(int fd, boolean peers) {
        this.fd = fd;
        this.peers = peers;
        Arena arena = Arena.ofAuto();
        this.one = arena.allocate(8, 8);
        this.oneAddress = one.address();
        this.counter = arena.allocate(8, 8);
        this.counterAddress = counter.address();
        MemorySegment iov = arena.allocate(16, 8); // struct iovec { void *iov_base; size_t iov_len; }
        iov.set(ValueLayout.JAVA_LONG, 0, counterAddress);
        iov.set(ValueLayout.JAVA_LONG, 8, 8L);
        this.counterIov = iov.address();
        one.set(ValueLayout.JAVA_LONG, 0, 1L);
    }

    /**
     * A new eventfd of our own, non-blocking; it signals with a plain write. Hand it only to
     * processes we trust (our own clients): anyone holding its description can make it blocking.
     * An eventfd that comes from a peer goes through {@link #adopt}.
     */
    public static EventFd create() {
        return new EventFd(Errno.check(LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK), "eventfd"), false);
    }

    /**
     * Takes ownership of an eventfd received from a peer. Refuses an fd that is not an eventfd
     * (the fd stays the caller's then). Also sets O_NONBLOCK, which only the fallbacks lean on:
     * the peer shares the description and may clear it again, so signal and drain do not depend
     * on it (see the class comment).
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

    public void signal() {
        if (!enter()) return;
        try {
            if (!peers) {
                writeOne();
                return;
            }
            IoUringSignal r = ring;
            if (r == null && !pollThenWrite) r = firstPeerSignal();
            if (r != null) r.signal();
            else pollThenWrite();
        } finally {
            leave();
        }
    }

    private IoUringSignal firstPeerSignal() {
        synchronized (ringSetup) { // once per eventfd; we hold a share, so close cannot run meanwhile
            if (ring == null && !pollThenWrite) {
                IoUringSignal r = IoUringSignal.openOrNull(fd);
                if (r == null) pollThenWrite = true;
                else ring = r;
            }
            return ring;
        }
    }

    /** For tests: signal through the fallback (poll, then write) even where io_uring works. Call before the first signal. */
    void signalByPollAndWrite() {
        pollThenWrite = true;
    }

    private void writeOne() {
        long rc = LibC.write(fd, oneAddress, 8);
        if (rc < 0) {
            int e = Errno.last();
            // EAGAIN: the counter is at its maximum, so the reader will wake anyway.
            if (e != Errno.EAGAIN) throw Errno.failure("eventfd write", e);
        }
    }

    /** The fallback without io_uring: write only if poll says there is room. Racy, see the class comment. */
    private void pollThenWrite() {
        if (!ready(LibC.POLLOUT)) return; // full: its reader wakes anyway (a doorbell counts nothing more)
        writeOne();
    }

    private boolean ready(short event) {
        MemorySegment pfd = POLLFD.get();
        pfd.set(ValueLayout.JAVA_INT, 0, fd);
        pfd.set(ValueLayout.JAVA_SHORT, 4, event);
        pfd.set(ValueLayout.JAVA_SHORT, LibC.POLLFD_REVENTS_OFFSET, (short) 0);
        int n = LibC.poll(pfd.address(), 1, 0);
        if (n < 0) throw Errno.failure("poll(eventfd)", Errno.last());
        return n > 0 && (pfd.get(ValueLayout.JAVA_SHORT, LibC.POLLFD_REVENTS_OFFSET) & event) != 0;
    }

    /**
     * Reads and clears the counter; returns how many signals arrived since the last drain (0 if
     * none; unsigned: a counter a peer saturated reads as 2^64-1, that is -1; signals through a
     * ring whose completion queue overflowed may count as one). Never waits.
     */
    public long drain() {
        if (!enter()) return 0;
        try {
            // Only the owning worker drains, so the counter buffer has a single user.
            if (nowaitReads) {
                long rc = LibC.preadv2(fd, counterIov, 1, -1, LibC.RWF_NOWAIT);
                if (rc == 8) return counter.get(ValueLayout.JAVA_LONG, 0);
                int e = Errno.last();
                if (e == Errno.EAGAIN) return 0;
                if (e != Errno.EOPNOTSUPP) throw Errno.failure("eventfd preadv2(RWF_NOWAIT)", e);
                noNowaitReads();
            }
            if (peers && !ready(LibC.POLLIN)) return 0;
            long rc = LibC.read(fd, counterAddress, 8);
            if (rc < 0) {
                int e = Errno.last();
                if (e == Errno.EAGAIN) return 0;
                throw Errno.failure("eventfd read", e);
            }
            return counter.get(ValueLayout.JAVA_LONG, 0);
        } finally {
            leave();
        }
    }

    private static synchronized void noNowaitReads() {
        if (!nowaitReads) return;
        nowaitReads = false;
        LOG.log(Level.WARNING, "preadv2(RWF_NOWAIT) is not supported on eventfds here (Linux < 5.12): peers'' eventfds "
                + "are drained with poll and read, which a peer that clears O_NONBLOCK can block");
    }

    /** Closes the fd once, however many threads call this; at once, or when the last running signal or drain ends. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) leave();
    }

    private boolean enter() {
        while (true) {
            int u = users.get();
            if (u == 0 || closed.get()) return false; // a call that passed this before close still runs, on open fds
            if (users.compareAndSet(u, u + 1)) return true;
        }
    }

    private void leave() {
        if (users.decrementAndGet() == 0) {
            IoUringSignal r = ring;
            if (r != null) r.close();
            LibC.close(fd);
        }
    }
}
