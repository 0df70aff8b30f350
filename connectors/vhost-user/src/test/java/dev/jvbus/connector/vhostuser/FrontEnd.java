package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.sys.Received;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.EventFd;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * A minimal vhost-user front-end for tests: speaks the wire format byte for byte (including wrong
 * bytes on purpose) over a real AF_UNIX socket with real fds. Public for the hostile-peers harness.
 */
public final class FrontEnd implements AutoCloseable {
    public final UnixConnection conn;

    public FrontEnd(Path socket) {
        this(UnixConnection.connect(socket));
    }

    /** A front-end on a connection it accepted (client mode: the back-end connects to the front-end). */
    public FrontEnd(UnixConnection conn) {
        this.conn = conn;
    }

    public void send(Request r, int flags, ByteBuffer payload, int... fds) {
        sendRaw(Codec.request(r, flags, payload), fds);
    }

    public void send(Request r, int... fds) {
        send(r, 0, Codec.payload(0), fds);
    }

    public void sendU64(Request r, long v, int... fds) {
        send(r, 0, Codec.payload(8).putLong(v).flip(), fds);
    }

    public void sendU64NeedReply(Request r, long v, int... fds) {
        send(r, Wire.FLAG_NEED_REPLY, Codec.payload(8).putLong(v).flip(), fds);
    }

    public void sendState(Request r, int index, int num) {
        send(r, 0, Codec.payload(8).putInt(index).putInt(num).flip());
    }

    public void sendAddr(int index, long desc, long used, long avail) {
        send(Request.SET_VRING_ADDR, 0, Codec.payload(40).putInt(index).putInt(0).putLong(desc).putLong(used).putLong(avail).putLong(0).flip());
    }

    /** One region table: guest address 0 = user address {@code userBase} = offset 0 of {@code fd}. */
    public void sendMemTable(long size, long userBase, int fd) {
        ByteBuffer p = Codec.payload(8 + 32).putInt(1).putInt(0).putLong(0).putLong(size).putLong(userBase).putLong(0).flip();
        send(Request.SET_MEM_TABLE, 0, p, fd);
    }

    /**
     * One ring placed and started as QEMU does for a net device: SET_VRING_NUM {@code size}, SET_VRING_BASE 0,
     * SET_VRING_ADDR (user addresses), SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR when {@code err} is given,
     * SET_VRING_ENABLE 1. The one placement the tests' front-ends share ({@link StreamGuest#shareWith} and the others).
     */
    public void placeRing(int index, int size, long desc, long avail, long used, EventFd kick, EventFd call, EventFd err) {
        sendState(Request.SET_VRING_NUM, index, size);
        sendState(Request.SET_VRING_BASE, index, 0);
        sendAddr(index, desc, used, avail);
        sendU64(Request.SET_VRING_KICK, index, kick.fd());
        sendU64(Request.SET_VRING_CALL, index, call.fd());
        if (err != null) sendU64(Request.SET_VRING_ERR, index, err.fd());
        sendState(Request.SET_VRING_ENABLE, index, 1);
    }

    /**
     * The start of a session in the order QEMU uses: GET_FEATURES (its reply read), SET_PROTOCOL_FEATURES
     * {@code protocol}, SET_OWNER, SET_FEATURES {@code features} with VHOST_USER_F_PROTOCOL_FEATURES.
     */
    public void negotiate(long features, long protocol) {
        send(Request.GET_FEATURES);
        replyU64(Request.GET_FEATURES);
        sendU64(Request.SET_PROTOCOL_FEATURES, protocol);
        send(Request.SET_OWNER);
        sendU64(Request.SET_FEATURES, features | (1L << Wire.F_PROTOCOL_FEATURES));
    }

    public void sendRaw(ByteBuffer frame, int... fds) {
        byte[] b = new byte[frame.remaining()];
        frame.get(b);
        conn.sendAll(b, fds);
    }

    /** Reads one reply: returns its payload (header checked: REPLY flag, expected request). */
    public ByteBuffer reply(Request expected) {
        return reply(expected.id());
    }

    public ByteBuffer reply(int expectedId) {
        byte[] h = readFully(Wire.HEADER);
        ByteBuffer hb = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int id = hb.getInt(), flags = hb.getInt(), size = hb.getInt();
        if (id != expectedId) throw new AssertionError("reply to request " + id + ", expected " + expectedId);
        if ((flags & Wire.FLAG_REPLY) == 0) throw new AssertionError("reply without the REPLY flag");
        return ByteBuffer.wrap(readFully(size)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A reply and the fd that came with it (null if none): GET_INFLIGHT_FD. The caller owns the fd. */
    public record ReplyWithFd(ByteBuffer payload, dev.jvbus.core.sys.OwnedFd fd) { }

    public ReplyWithFd replyWithFd(Request expected) {
        byte[] h = new byte[Wire.HEADER];
        dev.jvbus.core.sys.OwnedFd fd = null;
        int got = 0;
        while (got < h.length) {   // SCM_RIGHTS travels with the first bytes of the message
            try (Received r = conn.recv(h, got, h.length - got, 1)) {
                if (r.endOfStream()) throw new AssertionError("back-end closed the connection after " + got + " header bytes");
                if (r.fdCount() > 0 && fd == null) fd = r.fds().get(0).take();
                got += r.length();
            }
        }
        ByteBuffer hb = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int id = hb.getInt(), flags = hb.getInt(), size = hb.getInt();
        if (id != expected.id()) throw new AssertionError("reply to request " + id + ", expected " + expected.id());
        if ((flags & Wire.FLAG_REPLY) == 0) throw new AssertionError("reply without the REPLY flag");
        return new ReplyWithFd(ByteBuffer.wrap(readFully(size)).order(ByteOrder.LITTLE_ENDIAN), fd);
    }

    public long replyU64(Request r) {
        return reply(r).getLong();
    }

    /** GET_VRING_BASE for ring {@code index}: the base the back-end answers (its reply must name that ring). */
    public int getVringBase(int index) {
        sendState(Request.GET_VRING_BASE, index, 0);
        ByteBuffer reply = reply(Request.GET_VRING_BASE);
        int ring = reply.getInt();
        if (ring != index) throw new AssertionError("GET_VRING_BASE for ring " + index + " answered for ring " + ring);
        return reply.getInt();
    }

    /** True if the back-end closed the connection (a read returns end of stream). */
    public boolean closedByPeer() {
        byte[] one = new byte[1];
        try (Received r = conn.recv(one, 0, 1, 0)) {
            return r.endOfStream();
        }
    }

    private byte[] readFully(int n) {
        byte[] b = new byte[n];
        int got = 0;
        while (got < n) {
            try (Received r = conn.recv(b, got, n - got, 0)) {
                if (r.endOfStream()) throw new AssertionError("back-end closed the connection after " + got + " of " + n + " bytes");
                got += r.length();
            }
        }
        return b;
    }

    @Override
    public void close() {
        conn.close();
    }
}
