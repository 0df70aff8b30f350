package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.Received;
import dev.jvbus.core.sys.UnixConnection;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Frames (PROTOCOL.md) over one connected AF_UNIX socket, both directions, with the fds each frame
 * carries.
 *
 * <p>Reading asks the kernel for exactly the header, then exactly the body, so a read never takes
 * bytes of the next frame and the fds of a frame (attached by the sender to its first byte) are
 * always collected with that frame. Every fd that arrives is owned at once by the frame's
 * {@link PassedFds}; nothing is left to leak on an error path. One thread reads.
 *
 * <p>Sending is serialised by one lock per connection, so a reply from the session thread and an
 * event from a bus thread never interleave their bytes (control plane: a lock is clear and cheap).
 */
public final class FrameChannel implements AutoCloseable {
    private final UnixConnection connection;
    private final ReentrantLock sendLock = new ReentrantLock();
    private final byte[] header = new byte[Wire.HEADER];
    private final byte[] body = new byte[Wire.MAX_FRAME - Wire.HEADER];

    public FrameChannel(UnixConnection connection) {
        this.connection = connection;
    }

    public UnixConnection connection() { return connection; }

    /** What one {@link #read()} found. */
    public sealed interface Inbound { }

    /** A frame whose length was sound; the body may still be anything. Close it to close untaken fds. */
    public record Frame(FrameHeader header, ByteBuffer body, PassedFds fds, boolean fdsTruncated) implements Inbound, AutoCloseable {
        @Override public void close() { fds.close(); }
    }

    /** The header's length or reserved byte is impossible: no next frame can be found. */
    public record BrokenFrame(ProtocolException error, int seq) implements Inbound { }

    /** The peer closed, died (ECONNRESET) or stopped mid-frame. */
    public record EndOfStream(boolean midFrame) implements Inbound { }

    /** Blocks for the next frame. */
    public Inbound read() {
        int[] fds = new int[0];
        boolean truncated = false;
        int got = 0;
        try {
            while (got < Wire.HEADER) {
                try (Received r = connection.recv(header, got, Wire.HEADER - got, Wire.MAX_FDS)) {
                    if (r.endOfStream()) return closeAnd(fds, new EndOfStream(got > 0));
                    if (r.wouldBlock()) continue;
                    truncated |= r.fdsTruncated();
                    fds = takeAll(r, fds);
                    got += r.length();
                }
            }
            ByteBuffer hb = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
            FrameHeader h;
            try {
                h = FrameHeader.read(hb);
            } catch (ProtocolException e) {
                return closeAnd(fds, new BrokenFrame(e, hb.getInt(8)));
            }
            int need = h.bodyLength();
            got = 0;
            while (got < need) {
                try (Received r = connection.recv(body, got, need - got, Wire.MAX_FDS)) {
                    if (r.endOfStream()) return closeAnd(fds, new EndOfStream(true));
                    if (r.wouldBlock()) continue;
                    truncated |= r.fdsTruncated();
                    fds = takeAll(r, fds);
                    got += r.length();
                }
            }
            PassedFds owned = new PassedFds(fds);
            fds = new int[0];
            return new Frame(h, ByteBuffer.wrap(Arrays.copyOf(body, need)).order(ByteOrder.LITTLE_ENDIAN), owned, truncated);
        } catch (RuntimeException e) {
            new PassedFds(fds).close();
            throw e;
        }
    }

    private static int[] takeAll(Received r, int[] fds) {
        if (r.fdCount() == 0) return fds;
        int[] more = Arrays.copyOf(fds, fds.length + r.fdCount());
        for (int i = 0; i < r.fdCount(); i++) more[fds.length + i] = r.takeFd(i);
        return more;
    }

    private static Inbound closeAnd(int[] fds, Inbound result) {
        new PassedFds(fds).close();
        return result;
    }

    /**
     * Sends one message with its fds (they stay open here; the peer gets duplicates).
     *
     * @throws Errno.SysException if the peer has gone (EPIPE)
     */
    public void send(Message m, int seq, int... fds) {
        ByteBuffer frame = Codec.encode(m, seq);
        byte[] bytes = new byte[frame.remaining()];
        frame.get(bytes);
        sendFrame(bytes, fds);
    }

    /** Sends bytes that are already a frame (or, in tests, deliberately are not). */
    public void sendFrame(byte[] frame, int... fds) {
        sendLock.lock();
        try {
            connection.sendAll(frame, fds);
        } finally {
            sendLock.unlock();
        }
    }

    public boolean isClosed() { return connection.isClosed(); }

    @Override
    public void close() {
        connection.close();
    }
}
