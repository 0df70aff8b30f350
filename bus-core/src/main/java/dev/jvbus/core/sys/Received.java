package dev.jvbus.core.sys;

import java.util.Arrays;

/**
 * What one {@link UnixConnection#recv} returned: a byte count and the fds that arrived with those
 * bytes. The fds belong to this object until the caller takes them ({@link #takeFd},
 * {@link #takeMemfd}, {@link #takeEventFd}); {@link #close()} closes every fd not taken. So a
 * caller that rejects a message (wrong fd count, wrong kind of fd) just closes it and leaks nothing:
 * <pre>{@code
 * try (Received r = conn.recv(buf, 0, buf.length, 4)) {
 *     if (r.endOfStream()) ...;
 *     Memfd region = r.takeMemfd(0, size);   // throws if fd 0 is not a mappable file of that size
 * }                                          // fds 1..3 (if any, and not taken) are closed here
 * }</pre>
 */
public final class Received implements AutoCloseable {
    static final Received WOULD_BLOCK = new Received(-1, new int[0], false);
    static final Received END_OF_STREAM = new Received(0, new int[0], false);
    private static final int TAKEN = -1;

    private final int length;
    private final int[] fds;
    private final boolean fdsTruncated;

    Received(int length, int[] fds, boolean fdsTruncated) {
        this.length = length;
        this.fds = fds;
        this.fdsTruncated = fdsTruncated;
    }

    /** Bytes copied into the caller's array (0 at end of stream, -1 if a non-blocking socket had nothing). */
    public int length() { return length; }

    /** The peer closed its end (or died); nothing more will arrive. */
    public boolean endOfStream() { return length == 0; }

    /** A non-blocking socket had nothing to read. */
    public boolean wouldBlock() { return length < 0; }

    /**
     * The peer sent more fds than the caller allowed (MSG_CTRUNC). The ones that did arrive are
     * already closed and {@link #fdCount()} is 0: the message is a protocol error, not a partial success.
     */
    public boolean fdsTruncated() { return fdsTruncated; }

    public int fdCount() { return fds.length; }

    /** Looks at fd {@code i} without taking it (it is still closed by {@link #close()}). */
    public int peekFd(int i) {
        int fd = fds[i];
        if (fd == TAKEN) throw new IllegalStateException("fd " + i + " was already taken");
        return fd;
    }

    /** What fd {@code i} is (memfd, socket, eventfd ...), without taking it. */
    public FdStat stat(int i) {
        return FdStat.of(peekFd(i));
    }

    /** Takes ownership of fd {@code i}: the caller closes it from now on. */
    public int takeFd(int i) {
        int fd = peekFd(i);
        fds[i] = TAKEN;
        return fd;
    }

    /** Maps fd {@code i} as shared memory and takes it; refuses (fd stays here) a non-file or a too-small file. */
    public Memfd takeMemfd(int i, long size) {
        Memfd m = Memfd.adopt(peekFd(i), size);
        fds[i] = TAKEN;
        return m;
    }

    /** Takes fd {@code i} as a doorbell; refuses (fd stays here) anything that is not an eventfd. */
    public EventFd takeEventFd(int i) {
        EventFd e = EventFd.adopt(peekFd(i));
        fds[i] = TAKEN;
        return e;
    }

    /** Closes every fd the caller did not take. */
    @Override
    public void close() {
        for (int i = 0; i < fds.length; i++) {
            if (fds[i] != TAKEN) {
                LibC.close(fds[i]);
                fds[i] = TAKEN;
            }
        }
    }

    @Override
    public String toString() {
        return "Received[length=" + length + ", fds=" + Arrays.toString(fds) + (fdsTruncated ? ", truncated" : "") + "]";
    }
}
