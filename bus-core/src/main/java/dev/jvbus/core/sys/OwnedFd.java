package dev.jvbus.core.sys;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * One file descriptor and the duty to close it, held by exactly one owner at a time. The only way
 * the bus holds an fd a peer sent (and the way {@link EventFd} and {@link Memfd} receive theirs).
 *
 * <p>Why a type: an fd number is recycled by the kernel the moment it is closed, so closing one
 * twice can close somebody else's (another session's socket), and forgetting to close one leaks it
 * for the life of the JVM. With this type:
 * <ul>
 *   <li>{@link #close()} is idempotent and atomic: whoever calls it first closes the fd, later
 *       calls (from any thread) do nothing. A number is never closed twice through it.</li>
 *   <li>Ownership moves only explicitly: {@link #take()} moves the fd into a new {@code OwnedFd}
 *       (this one is then empty, closing it does nothing); {@code EventFd.adopt} and
 *       {@code Memfd.adopt} take it only when they accept it, so a refused fd stays with the caller,
 *       who closes it.</li>
 *   <li>{@link #number()} lends the number for a system call; it fails on an empty holder rather
 *       than hand out a number that may already belong to someone else.</li>
 * </ul>
 */
public final class OwnedFd implements AutoCloseable {
    private static final int EMPTY = -1;

    private final AtomicInteger fd;

    private OwnedFd(int fd) {
        if (fd < 0) throw new IllegalArgumentException("not an fd: " + fd);
        this.fd = new AtomicInteger(fd);
    }

    /** Takes ownership of an fd number the kernel just handed this process (recvmsg, open, pidfd_getfd). */
    static OwnedFd of(int fd) {
        return new OwnedFd(fd);
    }

    /**
     * Duplicates {@code peerFd} of process {@code pid} into this process ({@code pidfd_getfd(2)},
     * Linux 5.6+, same user and ptrace-permitted). For tests and tools that pair two processes
     * without a socket; connectors receive fds with SCM_RIGHTS instead.
     */
    public static OwnedFd fromPeer(long pid, int peerFd) {
        int pidfd = Errno.check(LibC.pidfd_open(Math.toIntExact(pid), 0), "pidfd_open(" + pid + ")");
        try {
            return of(Errno.check(LibC.pidfd_getfd(pidfd, peerFd, 0), "pidfd_getfd(" + pid + ", " + peerFd + ")"));
        } finally {
            LibC.close(pidfd);
        }
    }

    /** A duplicate ({@code dup(2)}) of an fd this process uses, owned separately (close-on-exec). */
    public static OwnedFd duplicate(int fd) {
        return of(Errno.check(LibC.fcntl(fd, LibC.F_DUPFD_CLOEXEC, 0), "fcntl(F_DUPFD_CLOEXEC, " + fd + ")"));
    }

    /**
     * The fd number, lent for a call: this object still owns it.
     *
     * @throws IllegalStateException if the fd was closed or handed over
     */
    public int number() {
        int n = fd.get();
        if (n == EMPTY) throw new IllegalStateException("fd was closed or handed over");
        return n;
    }

    /** True while this object owns an open fd. */
    public boolean isOpen() {
        return fd.get() != EMPTY;
    }

    /**
     * Moves the fd into a new owner; this one is empty afterwards (its {@link #close()} does nothing).
     *
     * @throws IllegalStateException if the fd was closed or handed over already
     */
    public OwnedFd take() {
        return new OwnedFd(release());
    }

    /** Hands the bare number to an owner in this package that closes it itself (EventFd, Memfd). */
    int release() {
        int n = fd.getAndSet(EMPTY);
        if (n == EMPTY) throw new IllegalStateException("fd was closed or handed over");
        return n;
    }

    /** What the fd refers to (statx). */
    public FdStat stat() {
        return FdStat.of(number());
    }

    /** True if the fd is an eventfd. */
    public boolean isEventFd() {
        return FdStat.isEventFd(number());
    }

    /** Closes the fd if this object still owns it; safe to call any number of times, from any thread. */
    @Override
    public void close() {
        int n = fd.getAndSet(EMPTY);
        if (n != EMPTY) LibC.close(n);
    }

    @Override
    public String toString() {
        int n = fd.get();
        return n == EMPTY ? "OwnedFd[empty]" : "OwnedFd[" + n + "]";
    }
}
