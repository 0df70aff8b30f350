package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.sys.UnixConnection;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * A client that sends whatever bytes and fds a test wants, well-formed or not, and reads what comes back.
 * Public for vhost-user's hostile-peers harness (through this module's test jar).
 */
public final class RawClient implements AutoCloseable {
    public final FrameChannel channel;
    private int seq = 100;

    public RawClient(Path socket) {
        channel = new FrameChannel(UnixConnection.connect(socket));
    }

    public static RawClient greeted(Path socket) throws ProtocolException {
        RawClient c = new RawClient(socket);
        Message.Reply r = c.request(new Message.Hello(Wire.VERSION, Wire.VERSION, "raw"));
        if (!r.isOk()) throw new AssertionError("HELLO refused: " + r);
        return c;
    }

    /** A well-formed request; returns its reply (skipping events). */
    public Message.Reply request(Message m, int... fds) throws ProtocolException {
        int s = ++seq;
        channel.send(m, s, fds);
        return replyTo(s);
    }

    /** A frame built by hand: header fields as given, then the body. */
    public Message.Reply raw(int length, int type, int fdCount, byte[] body, int... fds) throws ProtocolException {
        int s = ++seq;
        channel.sendFrame(frame(length, type, fdCount, s, body), fds);
        return replyTo(s);
    }

    public static byte[] frame(int length, int type, int fdCount, int seq, byte[] body) {
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + body.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(length).putShort((short) type).put((byte) fdCount).put((byte) 0).putInt(seq).put(body);
        return b.array();
    }

    /** Reads until the reply with {@code seq} (or a seq-0 reply: the bus closing on us). */
    public Message.Reply replyTo(int s) throws ProtocolException {
        while (true) {
            Message m = next();
            if (m == null) throw new AssertionError("connection closed before the reply to seq " + s);
            if (m instanceof Message.Reply r && (lastSeq == s || lastSeq == 0)) return r;
        }
    }

    private int lastSeq;

    /** The next message, or null at end of stream. */
    public Message next() throws ProtocolException {
        switch (channel.read()) {
            case FrameChannel.EndOfStream e -> { return null; }
            case FrameChannel.BrokenFrame b -> throw b.error();
            case FrameChannel.Frame f -> {
                try (f) {
                    lastSeq = f.header().seq();
                    return Codec.decode(f.header(), f.body(), f.fds().count());
                }
            }
        }
    }

    public int lastSeq() { return lastSeq; }

    /** True once the bus has closed the connection (reads end of stream). */
    public boolean closedByBus() throws ProtocolException {
        return next() == null;
    }

    @Override
    public void close() {
        channel.close();
    }

}
