package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A connected AF_UNIX stream socket that carries bytes and file descriptors (SCM_RIGHTS), which
 * Java's own channels cannot do. The control plane of the shm and vhost-user connectors.
 *
 * <p>The native message headers and buffers are allocated once per connection, one set per
 * direction, so one thread may send while another receives. Each direction is serialised by its
 * own lock (control plane: clarity over the last nanosecond).
 *
 * <p>Stream semantics: the kernel attaches passed fds to the first byte of the sendmsg that
 * carried them, and a recvmsg never returns bytes from before and after such a boundary together,
 * so fds arrive with the bytes they were sent with. A message is framed by the protocol above.
 */
public final class UnixConnection implements Pollable, AutoCloseable {
    /** Bytes moved per sendmsg/recvmsg; larger sends are split, larger receives take several calls. */
    public static final int CHUNK = 64 * 1024;
    /** Most fds one message can carry (the kernel's SCM_MAX_FD). */
    public static final int MAX_FDS = LibC.SCM_MAX_FD;

    // LP64 struct layouts (see LibC).
    private static final int MSGHDR_SIZE = 56, MSG_IOV = 16, MSG_IOVLEN = 24, MSG_CONTROL = 32,
            MSG_CONTROLLEN = 40, MSG_FLAGS = 48;
    private static final int CMSG_HDR = 16, CMSG_LEVEL = 8, CMSG_TYPE = 12;
    private static final int CONTROL_CAPACITY = cmsgSpace(MAX_FDS * 4);

    private final int fd;
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Direction out;
    private final Direction in;

    /** The preallocated native state of one direction. */
    private static final class Direction {
        final ReentrantLock lock = new ReentrantLock();
        final MemorySegment msg, iov, control, data;

        Direction(Arena arena) {
            msg = arena.allocate(MSGHDR_SIZE, 8);
            iov = arena.allocate(16, 8);
            control = arena.allocate(CONTROL_CAPACITY, 8);
            data = arena.allocate(CHUNK, 8);
            msg.set(ValueLayout.ADDRESS, MSG_IOV, iov);
            msg.set(ValueLayout.JAVA_LONG, MSG_IOVLEN, 1);
            iov.set(ValueLayout.ADDRESS, 0, data);
        }

        void prepare(int dataLength, int controlLength) {
            iov.set(ValueLayout.JAVA_LONG, 8, dataLength);
            msg.set(ValueLayout.ADDRESS, MSG_CONTROL, controlLength == 0 ? MemorySegment.NULL : control);
            msg.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, controlLength);
            msg.set(ValueLayout.JAVA_INT, MSG_FLAGS, 0);
        }
    }

    UnixConnection(int fd) {
        this.fd = fd;
        // An automatic arena: the buffers live as long as this object, so a call racing with
        // close() can never make the kernel write into freed memory.
        Arena arena = Arena.ofAuto();
        this.out = new Direction(arena);
        this.in = new Direction(arena);
    }

    /** Connects to a listening socket at {@code path}. */
    public static UnixConnection connect(Path path) {
        int fd = Errno.check(LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0), "socket(AF_UNIX)");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = sockaddr(arena, path);
            Errno.check(LibC.connect(fd, addr.address(), (int) addr.byteSize()), "connect(" + path + ")");
            return new UnixConnection(fd);
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** Two connected ends ({@code socketpair(2)}), e.g. one for this process and one to hand to a child. */
    public static Pair pair() {
        int[] sv = new int[2];
        Errno.check(LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, sv), "socketpair(AF_UNIX)");
        return new Pair(new UnixConnection(sv[0]), new UnixConnection(sv[1]));
    }

    public record Pair(UnixConnection first, UnixConnection second) implements AutoCloseable {
        @Override
        public void close() {
            first.close();
            second.close();
        }
    }

    /**
     * One sendmsg: up to {@link #CHUNK} bytes of {@code data[offset, offset+length)}, with
     * {@code fds} attached to the first byte (the fds stay open here; the peer gets duplicates).
     *
     * @return bytes sent, possibly fewer than asked; 0 if a non-blocking socket's buffer is full,
     *         in which case nothing was sent, fds included
     * @throws Errno.SysException errno EPIPE if the peer has gone
     */
    public int send(byte[] data, int offset, int length, int... fds) {
        if (fds.length > MAX_FDS) throw new IllegalArgumentException(fds.length + " fds in one message; the kernel allows " + MAX_FDS);
        // A stream socket attaches fds to bytes; with no byte, Linux silently drops the fds.
        if (fds.length > 0 && length == 0) throw new IllegalArgumentException("fds need at least one byte to travel with");
        java.util.Objects.checkFromIndexSize(offset, length, data.length);
        out.lock.lock();
        try {
            return sendLocked(data, offset, length, 0, fds);
        } finally {
            out.lock.unlock();
        }
    }

    /**
     * One sendmsg that never waits, neither for the socket buffer (MSG_DONTWAIT) nor for another
     * thread's send on this connection: for a last word to a peer the bus is about to drop, which
     * must not block the thread that drops it (the peer may have stopped reading).
     *
     * @return bytes sent, possibly fewer than asked; 0 if the buffer is full or another send is under way
     */
    public int sendNow(byte[] data) {
        if (!out.lock.tryLock()) return 0;
        try {
            if (closed.get()) return 0;
            return sendLocked(data, 0, data.length, LibC.MSG_DONTWAIT);
        } catch (Errno.SysException gone) {
            return 0;
        } finally {
            out.lock.unlock();
        }
    }

    private int sendLocked(byte[] data, int offset, int length, int flags, int... fds) {
        ensureOpen();
        int chunk = Math.min(length, CHUNK);
        MemorySegment.copy(data, offset, out.data, ValueLayout.JAVA_BYTE, 0, chunk);
        int controlLength = 0;
        if (fds.length > 0) {
            controlLength = cmsgSpace(fds.length * 4);
            out.control.set(ValueLayout.JAVA_LONG, 0, CMSG_HDR + fds.length * 4L); // CMSG_LEN
            out.control.set(ValueLayout.JAVA_INT, CMSG_LEVEL, LibC.SOL_SOCKET);
            out.control.set(ValueLayout.JAVA_INT, CMSG_TYPE, LibC.SCM_RIGHTS);
            MemorySegment.copy(fds, 0, out.control, ValueLayout.JAVA_INT, CMSG_HDR, fds.length);
        }
        out.prepare(chunk, controlLength);
        while (true) {
            // MSG_NOSIGNAL: a dead peer is an EPIPE for this call, not a SIGPIPE for the process.
            long rc = LibC.sendmsg(fd, out.msg.address(), LibC.MSG_NOSIGNAL | flags);
            if (rc >= 0) return (int) rc;
            int e = Errno.last();
            if (e == Errno.EINTR) continue;
            if (e == Errno.EAGAIN) return 0;
            throw Errno.failure("sendmsg", e);
        }
    }

    /**
     * Sends the whole message (fds with its first byte), for a blocking socket. (No ranged overload:
     * {@code sendAll(buf, 1, 2)} would silently read as two fds.)
     *
     * @throws Errno.SysException errno EPIPE if the peer has gone, EAGAIN if the socket is non-blocking and full
     */
    public void sendAll(byte[] message, int... fds) {
        int offset = 0;
        int length = message.length;
        int sent = send(message, offset, length, fds);
        while (true) {
            if (sent == 0 && length > 0) throw Errno.failure("sendmsg (socket is non-blocking and full)", Errno.EAGAIN);
            offset += sent;
            length -= sent;
            if (length == 0) return;
            sent = send(message, offset, length);
        }
    }

    /**
     * One recvmsg into {@code dst[offset, offset+length)} (at most {@link #CHUNK} bytes), accepting
     * up to {@code maxFds} fds. More fds than that is the peer's protocol error: the result says
     * {@link Received#fdsTruncated()} and holds none (the kernel drops the excess, we close the rest).
     * Received fds are close-on-exec. Close the result (try-with-resources) to close fds you did not take.
     *
     * <p>End of stream, including a peer that died (ECONNRESET), and a receive on a closed
     * connection give {@link Received#endOfStream()}, never an exception.
     */
    public Received recv(byte[] dst, int offset, int length, int maxFds) {
        if (maxFds < 0 || maxFds > MAX_FDS) throw new IllegalArgumentException("maxFds must be in [0, " + MAX_FDS + "]: " + maxFds);
        if (length <= 0) throw new IllegalArgumentException("need room for at least one byte: " + length);
        java.util.Objects.checkFromIndexSize(offset, length, dst.length);
        in.lock.lock();
        try {
            if (closed.get()) return Received.END_OF_STREAM;
            int chunk = Math.min(length, CHUNK);
            in.prepare(chunk, maxFds == 0 ? 0 : cmsgSpace(maxFds * 4));
            long rc;
            while (true) {
                rc = LibC.recvmsg(fd, in.msg.address(), LibC.MSG_CMSG_CLOEXEC);
                if (rc >= 0) break;
                int e = Errno.last();
                if (e == Errno.EINTR) continue;
                if (e == Errno.EAGAIN) return Received.WOULD_BLOCK;
                if (e == Errno.ECONNRESET) return Received.END_OF_STREAM;
                throw Errno.failure("recvmsg", e);
            }
            int[] numbers = receivedFds();
            boolean truncated = (in.msg.get(ValueLayout.JAVA_INT, MSG_FLAGS) & LibC.MSG_CTRUNC) != 0;
            OwnedFds fds = OwnedFds.upTo(truncated ? 0 : numbers.length);
            for (int f : numbers) {
                if (truncated) LibC.close(f);
                else fds.add(OwnedFd.of(f));
            }
            MemorySegment.copy(in.data, ValueLayout.JAVA_BYTE, 0, dst, offset, (int) rc);
            if (rc == 0 && fds.count() == 0 && !truncated) return Received.END_OF_STREAM;
            return new Received((int) rc, fds, truncated);
        } finally {
            in.lock.unlock();
        }
    }

    /**
     * Reads exactly {@code length} bytes into {@code dst[offset, offset+length)} with as many
     * recvmsg calls as it takes (blocking socket), gathering the fds that arrive into {@code fds}.
     * Each call asks the kernel for at most {@code fds.room()} fds; if a call brings more, the
     * kernel discards the excess (MSG_CTRUNC), the batch closes what it held and is
     * {@linkplain OwnedFds#overLimit() over its limit}, and later calls ask for none, so a peer
     * that attaches a few fds to every byte of a long message never makes this process hold more
     * than the limit. The bytes are still read, so the caller can refuse the message and go on.
     *
     * @return {@code length}, or the bytes read before the peer closed (0 = clean end of stream)
     * @throws IllegalStateException if the socket is non-blocking (this would spin)
     */
    public int recvFully(byte[] dst, int offset, int length, OwnedFds fds) {
        int got = 0;
        while (got < length) {
            try (Received r = recv(dst, offset + got, length - got, Math.min(fds.room(), MAX_FDS))) {
                if (r.endOfStream()) return got;
                if (r.wouldBlock()) throw new IllegalStateException("recvFully needs a blocking socket (fd " + fd + ")");
                if (r.fdsTruncated()) fds.overLimitReached();
                else fds.addAll(r.fds());
                got += r.length();
            }
        }
        return got;
    }

    /** The fds in the SCM_RIGHTS messages of the last recvmsg (there may be several cmsgs). */
    private int[] receivedFds() {
        long controlLength = in.msg.get(ValueLayout.JAVA_LONG, MSG_CONTROLLEN);
        int count = 0;
        for (long p = 0; p + CMSG_HDR <= controlLength; ) {
            long len = in.control.get(ValueLayout.JAVA_LONG, p);
            if (len < CMSG_HDR || p + len > controlLength) break;
            if (isRights(p)) count += (int) ((len - CMSG_HDR) / 4);
            p += align8(len);
        }
        int[] fds = new int[count];
        int k = 0;
        for (long p = 0; p + CMSG_HDR <= controlLength; ) {
            long len = in.control.get(ValueLayout.JAVA_LONG, p);
            if (len < CMSG_HDR || p + len > controlLength) break;
            if (isRights(p)) {
                int n = (int) ((len - CMSG_HDR) / 4);
                MemorySegment.copy(in.control, ValueLayout.JAVA_INT, p + CMSG_HDR, fds, k, n);
                k += n;
            }
            p += align8(len);
        }
        return fds;
    }

    private boolean isRights(long p) {
        return in.control.get(ValueLayout.JAVA_INT, p + CMSG_LEVEL) == LibC.SOL_SOCKET
                && in.control.get(ValueLayout.JAVA_INT, p + CMSG_TYPE) == LibC.SCM_RIGHTS;
    }

    /** The peer's pid, uid and gid as the kernel recorded them at connect (or socketpair) time. */
    public PeerCredentials peerCredentials() {
        ensureOpen();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cred = arena.allocate(12, 4);
            MemorySegment len = arena.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, 12);
            Errno.check(LibC.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, cred.address(), len.address()),
                    "getsockopt(SO_PEERCRED)");
            return new PeerCredentials(cred.get(ValueLayout.JAVA_INT, 0), cred.get(ValueLayout.JAVA_INT, 4),
                    cred.get(ValueLayout.JAVA_INT, 8));
        }
    }

    /**
     * True if the peer has closed its end (or shut down its writing, or the connection failed),
     * without reading anything: a poll(2) for POLLRDHUP that returns at once. Lets an acceptor
     * tell a front-end that is gone, whose session has not yet read the end of stream, from one
     * that is still there.
     */
    public boolean peerHungUp() {
        if (closed.get()) return true;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pfd = arena.allocate(8, 4);
            pfd.set(ValueLayout.JAVA_INT, 0, fd);
            pfd.set(ValueLayout.JAVA_SHORT, 4, LibC.POLLRDHUP);
            int rc = LibC.poll(pfd.address(), 1, 0);
            if (rc < 0) return closed.get();
            short revents = pfd.get(ValueLayout.JAVA_SHORT, 6);
            return (revents & (LibC.POLLRDHUP | LibC.POLLHUP | LibC.POLLERR)) != 0;
        }
    }

    /** Tells the peer we will send no more (it reads end of stream); we can still receive. */
    public void shutdownOutput() {
        ensureOpen();
        Errno.check(LibC.shutdown(fd, LibC.SHUT_WR), "shutdown(SHUT_WR)");
    }

    /** Switches between blocking calls and calls that return at once (register with {@link Epoll} then). */
    public void setNonBlocking(boolean nonBlocking) {
        ensureOpen();
        Sockets.setNonBlocking(fd, nonBlocking);
    }

    @Override
    public int fd() { return fd; }

    public boolean isClosed() { return closed.get(); }

    /**
     * Closes the connection, once. A thread blocked in {@link #recv} returns end of stream and one
     * blocked in {@link #send} fails with EPIPE: shutdown wakes them first, and the fd is closed
     * only once neither direction is inside a call, so no call ever uses a recycled fd number.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        LibC.shutdown(fd, LibC.SHUT_RDWR); // wakes blocked callers; ENOTCONN is fine
        in.lock.lock();
        out.lock.lock();
        try {
            LibC.close(fd);
        } finally {
            out.lock.unlock();
            in.lock.unlock();
        }
    }

    private void ensureOpen() {
        if (closed.get()) throw new IllegalStateException("connection closed (fd " + fd + ")");
    }

    static int cmsgSpace(int dataLength) {
        return CMSG_HDR + (int) align8(dataLength);
    }

    private static long align8(long n) {
        return (n + 7) & ~7L;
    }

    /** A {@code struct sockaddr_un} for a filesystem path (no abstract names: they bypass file permissions). */
    static MemorySegment sockaddr(Arena arena, Path path) {
        byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        if (name.length == 0 || name.length >= LibC.SUN_PATH_MAX) {
            throw new IllegalArgumentException("socket path must be 1.." + (LibC.SUN_PATH_MAX - 1) + " bytes: " + path);
        }
        if (name[0] == 0) throw new IllegalArgumentException("abstract socket names are not supported: " + path);
        MemorySegment addr = arena.allocate(2 + name.length + 1, 8);
        addr.set(ValueLayout.JAVA_SHORT, 0, (short) LibC.AF_UNIX);
        MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
        return addr; // allocate() zeroes, so the name is NUL-terminated
    }
}
