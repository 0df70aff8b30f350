package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.OwnedFds;
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
 * {@link OwnedFds}; nothing is left to leak on an error path. A frame holds at most the fds its
 * type carries ({@link Wire#MAX_FDS} until the header says the type): a peer that spreads more over
 * many sendmsg calls gets the frame refused, every fd it brought closed, and the rest discarded by
 * the kernel before they reach this process. One thread reads.
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

    /**
     * A frame whose length was sound; the body may still be anything. Close it to close untaken fds.
     * If {@code fds().overLimit()}, the frame brought more fds than its type carries and holds none.
     */
    public record Frame(FrameHeader header, ByteBuffer body, OwnedFds fds) implements Inbound, AutoCloseable {
        @Override public void close() { fds.close(); }
    }

    /** The header's length or reserved byte is impossible: no next frame can be found. */
    public record BrokenFrame(ProtocolException error, int seq) implements Inbound { }

    /** The peer closed, died (ECONNRESET) or stopped mid-frame. */
    public record EndOfStream(boolean midFrame) implements Inbound { }

    /** Blocks for the next frame. */
    public Inbound read() {
        OwnedFds fds = OwnedFds.upTo(Wire.MAX_FDS);
        try {
            int got = connection.recvFully(header, 0, Wire.HEADER, fds);
            if (got < Wire.HEADER) return closeAnd(fds, new EndOfStream(got > 0));
            ByteBuffer hb = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
            FrameHeader h;
            try {
                h = FrameHeader.read(hb);
            } catch (ProtocolException e) {
                return closeAnd(fds, new BrokenFrame(e, hb.getInt(8)));
            }
            // The type fixes how many fds the frame carries: refuse any more from here on.
            MessageType type = MessageType.of(h.typeCode());
            fds.lowerLimit(type == null ? 0 : type.fds());
            int need = h.bodyLength();
            if (connection.recvFully(body, 0, need, fds) < need) return closeAnd(fds, new EndOfStream(true));
            return new Frame(h, ByteBuffer.wrap(Arrays.copyOf(body, need)).order(ByteOrder.LITTLE_ENDIAN), fds);
        } catch (RuntimeException e) {
            fds.close();
            throw e;
        }
    }

    private static Inbound closeAnd(OwnedFds fds, Inbound result) {
        fds.close();
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

    /**
     * Sends one message if that can be done at once (no wait for the socket buffer or another
     * sender): the last word to a peer the bus is about to drop, which may have stopped reading.
     *
     * @return true if the whole frame went out
     */
    public boolean sendNow(Message m, int seq) {
        ByteBuffer frame = Codec.encode(m, seq);
        byte[] bytes = new byte[frame.remaining()];
        frame.get(bytes);
        if (!sendLock.tryLock()) return false;
        try {
            return connection.sendNow(bytes) == bytes.length;
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
