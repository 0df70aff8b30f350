package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A listening AF_UNIX stream socket bound to a filesystem path, private to its owner (mode 0600).
 *
 * <p>Why the order bind, chmod, check, listen: bind creates the socket file with the process umask
 * (often 0755 or 0775), and the umask is process-wide, so changing it would race with every other
 * thread of the JVM. Connecting needs write permission on the file, and nobody can connect before
 * listen; so a chmod to 0600 between bind and listen leaves no window. We then re-read the path
 * (without following symlinks) and refuse to listen unless it is still a socket of mode 0600.
 * Put the socket in a directory only its owner can write, or someone could rename it away.
 */
public final class UnixListener implements Pollable, AutoCloseable {
    public static final int PRIVATE_MODE = 0600;

    private final int fd;
    private final Path path;
    private final long inode;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final ReentrantLock acceptLock = new ReentrantLock();

    private UnixListener(int fd, Path path, long inode) {
        this.fd = fd;
        this.path = path;
        this.inode = inode;
    }

    /**
     * Binds a new socket file at {@code path} (which must not exist: a stale socket from a dead
     * bus is the caller's to remove) with mode 0600, and listens.
     */
    public static UnixListener bind(Path path, int backlog) {
        int fd = Errno.check(LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0), "socket(AF_UNIX)");
        boolean bound = false;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = UnixConnection.sockaddr(arena, path);
            Errno.check(LibC.bind(fd, addr.address(), (int) addr.byteSize()), "bind(" + path + ")");
            bound = true;
            Errno.check(LibC.chmod(path.toString(), PRIVATE_MODE), "chmod(" + path + ", 0600)");
            FdStat stat = FdStat.ofPath(path);
            if (stat.kind() != FdStat.Kind.SOCKET || stat.permissions() != PRIVATE_MODE) {
                throw new IllegalStateException(path + " changed under us after bind: now a " + stat.kind()
                        + " with mode " + Integer.toOctalString(stat.permissions()));
            }
            Errno.check(LibC.listen(fd, backlog), "listen(" + path + ")");
            return new UnixListener(fd, path, stat.inode());
        } catch (RuntimeException e) {
            LibC.close(fd);
            if (bound) LibC.unlink(path.toString());
            throw e;
        }
    }

    /**
     * What an accept loop does after accept failed (EMFILE, ENFILE, ENOMEM...): wait a moment before
     * trying again, so a process out of fds neither spins on the error nor gives up serving.
     */
    public static void pauseAfterFailedAccept() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Accepts one connection (close-on-exec, blocking, whatever this listener's mode).
     *
     * @return the connection, or null if this listener is non-blocking and no client is waiting,
     *         or if the listener was closed (which wakes a blocked accept)
     */
    public UnixConnection accept() {
        acceptLock.lock();
        try {
            while (true) {
                if (closed.get()) return null;
                int c = LibC.accept4(fd, 0, 0, LibC.SOCK_CLOEXEC);
                if (c >= 0) return new UnixConnection(c);
                int e = Errno.last();
                if (e == Errno.EINTR || e == Errno.ECONNABORTED) continue;
                if (e == Errno.EAGAIN) return null;
                if (closed.get()) return null; // shutdown by close() makes accept fail with EINVAL
                throw Errno.failure("accept4(" + path + ")", e);
            }
        } finally {
            acceptLock.unlock();
        }
    }

    public void setNonBlocking(boolean nonBlocking) {
        Sockets.setNonBlocking(fd, nonBlocking);
    }

    public Path path() { return path; }

    @Override
    public int fd() { return fd; }

    /**
     * Stops listening, once: wakes a blocked {@link #accept()}, closes the fd when no accept is
     * running, and removes the socket file if it is still the one we bound (a newer bus may have
     * replaced it). Established connections are not affected.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        LibC.shutdown(fd, LibC.SHUT_RDWR);
        acceptLock.lock();
        try {
            LibC.close(fd);
        } finally {
            acceptLock.unlock();
        }
        try {
            FdStat now = FdStat.ofPath(path);
            if (now.kind() == FdStat.Kind.SOCKET && now.inode() == inode) LibC.unlink(path.toString());
        } catch (Errno.SysException gone) {
            // already removed: nothing to do
        }
    }
}
