package dev.jvbus.core.sys;

/**
 * What one {@link UnixConnection#recv} returned: a byte count and the fds that arrived with those
 * bytes, owned by {@link #fds()} until the caller takes them; {@link #close()} closes every fd not
 * taken. So a caller that rejects a message (wrong fd count, wrong kind of fd) just closes it and
 * leaks nothing:
 * <pre>{@code
 * try (Received r = conn.recv(buf, 0, buf.length, 4)) {
 *     if (r.endOfStream()) ...;
 *     EventFd bell = EventFd.adopt(r.fds().get(0));   // throws (fd stays here) if it is not an eventfd
 * }                                                   // fds 1..3 (if any, and not taken) are closed here
 * }</pre>
 * A message that spans several receives is better read with {@link UnixConnection#recvFully}.
 */
public final class Received implements AutoCloseable {
    static final Received WOULD_BLOCK = new Received(-1, OwnedFds.upTo(0), false);
    static final Received END_OF_STREAM = new Received(0, OwnedFds.upTo(0), false);

    private final int length;
    private final OwnedFds fds;
    private final boolean fdsTruncated;

    Received(int length, OwnedFds fds, boolean fdsTruncated) {
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

    public int fdCount() { return fds.count(); }

    /** The fds that came with these bytes; take the ones to keep before closing this. */
    public OwnedFds fds() { return fds; }

    /** Closes every fd the caller did not take. */
    @Override
    public void close() {
        fds.close();
    }

    @Override
    public String toString() {
        return "Received[length=" + length + ", fds=" + fds + (fdsTruncated ? ", truncated" : "") + "]";
    }
}
