package dev.jvbus.connector.vhostuser.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes front-end messages and encodes back-end replies. The one place a front-end's bytes are
 * checked: sizes against the request's payload shape, fd counts against the request's rule.
 */
public final class Codec {
    private Codec() {}

    /** The 12-byte header. */
    public record Header(int requestId, int flags, int size) {
        public Request request() {
            return Request.of(requestId);
        }
    }

    /**
     * Reads a header. An impossible payload size is fatal (there is no way to find the next message);
     * everything else about a message is judged once its payload has been read.
     */
    public static Header header(ByteBuffer in) throws VhostUserException {
        ByteBuffer b = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int request = b.getInt();
        int flags = b.getInt();
        int size = b.getInt();
        if (size < 0 || size > Wire.MAX_PAYLOAD)
            throw VhostUserException.fatal("request " + Integer.toUnsignedString(request) + " claims a payload of "
                    + Integer.toUnsignedString(size) + " bytes (at most " + Wire.MAX_PAYLOAD + ")");
        return new Header(request, flags, size);
    }

    /**
     * Decodes the payload of a known request.
     *
     * @param fds how many fds arrived with the message
     * @throws VhostUserException (not fatal) naming what is wrong: the payload was read, so the stream goes on
     */
    public static Message decode(Header h, ByteBuffer payload, int fds) throws VhostUserException {
        Request r = h.request();
        if (r == null) throw VhostUserException.refuse("unknown request " + Integer.toUnsignedString(h.requestId()));
        if ((h.flags() & Wire.VERSION_MASK) != Wire.VERSION)
            throw VhostUserException.refuse(r + ": protocol version " + (h.flags() & Wire.VERSION_MASK) + ", expected 1");
        if ((h.flags() & Wire.FLAG_REPLY) != 0)
            throw VhostUserException.refuse(r + ": a front-end request must not carry the REPLY flag");
        int size = h.size();
        Request.Payload shape = r.payload();
        if (size < shape.min || size > shape.max)
            throw VhostUserException.refuse(r + ": payload of " + size + " bytes, expected "
                    + (shape.min == shape.max ? shape.min : shape.min + ".." + shape.max));
        ByteBuffer b = payload.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        Message.Body body = switch (shape) {
            case NONE -> new Message.None();
            case U64 -> new Message.U64(b.getLong());
            case VRING_STATE -> new Message.VringState(b.getInt(), b.getInt());
            case VRING_ADDR -> new Message.VringAddr(b.getInt(), b.getInt(), b.getLong(), b.getLong(), b.getLong(), b.getLong());
            case MEM_TABLE -> memTable(r, b, size);
            case MEM_REGION -> {
                b.getLong(); // padding
                yield new Message.Region(b.getLong(), b.getLong(), b.getLong(), b.getLong());
            }
            case LOG -> new Message.Log(b.getLong(), b.getLong());
            case CONFIG -> config(r, b, size);
            case INFLIGHT -> new Message.Inflight(b.getLong(), b.getLong(), Short.toUnsignedInt(b.getShort()), Short.toUnsignedInt(b.getShort()));
        };
        checkFds(r, body, fds);
        return new Message(r, h.flags(), body);
    }

    private static Message.MemTable memTable(Request r, ByteBuffer b, int size) throws VhostUserException {
        int n = b.getInt();
        b.getInt(); // padding
        if (n < 1 || n > Wire.MAX_REGIONS)
            throw VhostUserException.refuse(r + ": " + Integer.toUnsignedString(n) + " regions (1.." + Wire.MAX_REGIONS + ")");
        if (size < 8 + 32 * n)
            throw VhostUserException.refuse(r + ": " + n + " regions need " + (8 + 32 * n) + " bytes, payload has " + size);
        List<Message.Region> regions = new ArrayList<>(n);
        for (int i = 0; i < n; i++) regions.add(new Message.Region(b.getLong(), b.getLong(), b.getLong(), b.getLong()));
        return new Message.MemTable(regions);
    }

    private static Message.Config config(Request r, ByteBuffer b, int size) throws VhostUserException {
        int offset = b.getInt();
        int len = b.getInt();
        int flags = b.getInt();
        if (len < 0 || len > Wire.MAX_CONFIG || 12 + len != size)
            throw VhostUserException.refuse(r + ": config access of " + len + " bytes in a " + size + "-byte payload");
        byte[] data = new byte[len];
        b.get(data);
        return new Message.Config(offset, len, flags, data);
    }

    private static void checkFds(Request r, Message.Body body, int fds) throws VhostUserException {
        int min = r.minFds(), max = r.maxFds();
        if (body instanceof Message.U64(long v) && (r == Request.SET_VRING_KICK || r == Request.SET_VRING_CALL || r == Request.SET_VRING_ERR)) {
            boolean noFd = (v & Wire.VRING_NOFD_MASK) != 0;
            min = max = noFd ? 0 : 1;
        }
        if (body instanceof Message.MemTable t) min = max = t.regions().size();
        if (fds < min || fds > max)
            throw VhostUserException.refuse(r + ": " + fds + " fds, expected " + (min == max ? min : min + ".." + max));
    }

    // ---- replies ----

    public static ByteBuffer replyU64(Request r, long value) {
        return replyU64(r.id(), value);
    }

    /** A u64 reply to a request id we may not know (a failed REPLY_ACK for an unknown request). */
    public static ByteBuffer replyU64(int requestId, long value) {
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + 8).order(ByteOrder.LITTLE_ENDIAN);
        return b.putInt(requestId).putInt(Wire.VERSION | Wire.FLAG_REPLY).putInt(8).putLong(value).flip();
    }

    public static ByteBuffer replyVringState(Request r, int index, int num) {
        return reply(r, 8).putInt(index).putInt(num).flip();
    }

    /** GET_INFLIGHT_FD's reply (the fd travels with it); 24 bytes, the size QEMU checks for. */
    public static ByteBuffer replyInflight(Request r, long mmapSize, long mmapOffset, int numQueues, int queueSize) {
        return reply(r, 24).putLong(mmapSize).putLong(mmapOffset).putShort((short) numQueues).putShort((short) queueSize).putInt(0).flip();
    }

    public static ByteBuffer replyConfig(Request r, int offset, int flags, byte[] data) {
        return reply(r, 12 + data.length).putInt(offset).putInt(data.length).putInt(flags).put(data).flip();
    }

    private static ByteBuffer reply(Request r, int size) {
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + size).order(ByteOrder.LITTLE_ENDIAN);
        return b.putInt(r.id()).putInt(Wire.VERSION | Wire.FLAG_REPLY).putInt(size);
    }

    // ---- front-end side (tests and tools speak to a back-end with these) ----

    public static ByteBuffer request(Request r, int flags, ByteBuffer payload) {
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + payload.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        return b.putInt(r.id()).putInt(Wire.VERSION | flags).putInt(payload.remaining()).put(payload).flip();
    }

    public static ByteBuffer payload(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }
}
