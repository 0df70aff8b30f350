package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.bus.DevId;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Encodes and decodes message bodies. Decoding is the one place a client's bytes are checked:
 * every field is read through {@link Body}, which refuses a read past the frame, so a short body
 * is a clear BAD_MESSAGE and never an exception from deep inside.
 */
public final class Codec {
    private Codec() {}

    /**
     * Decodes one frame's body.
     *
     * @param fdsReceived how many fds arrived with the frame (the transport counts them, the header only claims)
     * @throws ProtocolException recoverable: the caller replies with the error and reads the next frame
     */
    public static Message decode(FrameHeader h, ByteBuffer body, int fdsReceived) throws ProtocolException {
        MessageType type = MessageType.of(h.typeCode());
        if (type == null) throw new ProtocolException(ErrorCode.UNKNOWN_TYPE, "unknown message type 0x" + Integer.toHexString(h.typeCode()));
        if (fdsReceived != h.fdCount())
            throw new ProtocolException(ErrorCode.BAD_FDS, type + " header claims " + h.fdCount() + " fds but " + fdsReceived + " arrived");
        if (fdsReceived != type.fds())
            throw new ProtocolException(ErrorCode.BAD_FDS, type + " carries " + type.fds() + " fds, got " + fdsReceived);
        Body b = new Body(type, body);
        Message m = switch (type) {
            case HELLO -> new Message.Hello(b.u16(), b.u16(), b.string());
            case ENUMERATE -> new Message.Enumerate();
            case DEVOPEN -> new Message.DevOpen(b.devid());
            case DEVCLOSE -> new Message.DevClose(b.devid());
            case DEVCALL -> new Message.DevCall(b.devid(), b.i32(), b.rest());
            case DEVSHM -> new Message.DevShm(b.devid(), b.i64(), b.i64(), b.i64());
            case SIGNAL -> new Message.Signal(b.devid(), b.u16());
            case REPLY -> new Message.Reply(b.i32(), b.rest());
            case DEVADD -> new Message.DevAdd(b.devid(), b.string());
            case DEVDROP -> new Message.DevDrop(b.devid());
            case NEEDS_RESET -> new Message.NeedsReset(b.devid(), b.string());
            case MOVED -> new Message.Moved(b.devid(), b.string(), b.string(), b.devid(), b.string());
            case CONFIG_CHANGED -> new Message.ConfigChanged(b.devid());
        };
        b.end();
        return m;
    }

    /** Encodes a whole frame (header and body), ready to send with {@code type().fds()} fds. */
    public static ByteBuffer encode(Message m, int seq) {
        ByteBuffer body = ByteBuffer.allocate(Wire.MAX_FRAME - Wire.HEADER).order(ByteOrder.LITTLE_ENDIAN);
        switch (m) {
            case Message.Hello h -> { body.putShort((short) h.minVersion()).putShort((short) h.maxVersion()); putString(body, h.client()); }
            case Message.Enumerate e -> { }
            case Message.DevOpen o -> body.putInt(o.devid().value());
            case Message.DevClose c -> body.putInt(c.devid().value());
            case Message.DevCall c -> body.putInt(c.devid().value()).putInt(c.func()).put(c.payload());
            case Message.DevShm s -> body.putInt(s.devid().value()).putLong(s.guestAddress()).putLong(s.size()).putLong(s.offset());
            case Message.Signal s -> body.putInt(s.devid().value()).putShort((short) s.queue());
            case Message.Reply r -> body.putInt(r.status()).put(r.payload());
            case Message.DevAdd a -> { body.putInt(a.devid().value()); putString(body, a.deviceType()); }
            case Message.DevDrop d -> body.putInt(d.devid().value());
            case Message.NeedsReset n -> { body.putInt(n.devid().value()); putString(body, n.reason()); }
            case Message.ConfigChanged c -> body.putInt(c.devid().value());
            case Message.Moved v -> {
                body.putInt(v.devid().value());
                putString(body, v.bus());
                putString(body, v.container());
                body.putInt(v.devidThere().value());
                putString(body, v.socket());
            }
        }
        body.flip();
        ByteBuffer frame = ByteBuffer.allocate(Wire.HEADER + body.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        new FrameHeader(Wire.HEADER + body.remaining(), m.type().code(), m.type().fds(), seq).write(frame);
        frame.put(body).flip();
        return frame;
    }

    /** HELLO's reply payload: u16 version, string container. */
    public static byte[] encodeHelloAccepted(Message.HelloAccepted h) {
        ByteBuffer b = ByteBuffer.allocate(4 + Wire.MAX_STRING).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) h.version());
        putString(b, h.container());
        return java.util.Arrays.copyOf(b.array(), b.position());
    }

    public static Message.HelloAccepted decodeHelloAccepted(byte[] payload) throws ProtocolException {
        PayloadReader r = new PayloadReader("HELLO reply", payload);
        Message.HelloAccepted h = new Message.HelloAccepted(r.u16("version"), r.string("container"));
        r.end();
        return h;
    }

    /**
     * ENUMERATE's reply payload: u32 count, u8 complete, then per device u32 devid and string type.
     * Entries that would not fit one frame are left off and {@code complete} is 0.
     */
    public static byte[] encodeDeviceList(List<Message.DeviceEntry> devices) {
        int room = Wire.MAX_FRAME - Wire.HEADER - 4 - 5;   // reply status, count and flag
        ByteBuffer entries = ByteBuffer.allocate(room).order(ByteOrder.LITTLE_ENDIAN);
        int count = 0;
        for (Message.DeviceEntry e : devices) {
            byte[] type = e.deviceType().getBytes(StandardCharsets.UTF_8);
            if (entries.remaining() < 6 + type.length) break;
            entries.putInt(e.devid().value());
            putString(entries, e.deviceType());
            count++;
        }
        ByteBuffer out = ByteBuffer.allocate(5 + entries.position()).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(count).put((byte) (count == devices.size() ? 1 : 0)).put(entries.flip());
        return out.array();
    }

    public static Message.DeviceList decodeDeviceList(byte[] payload) throws ProtocolException {
        PayloadReader r = new PayloadReader("ENUMERATE reply", payload);
        int count = r.u32("count");
        boolean complete = r.u8("complete") != 0;
        if (count < 0 || count > payload.length / 6)
            throw new ProtocolException(ErrorCode.BAD_MESSAGE, "ENUMERATE reply claims " + Integer.toUnsignedString(count) + " devices in " + payload.length + " bytes");
        List<Message.DeviceEntry> list = new java.util.ArrayList<>(count);
        for (int i = 0; i < count; i++) list.add(new Message.DeviceEntry(new DevId(r.u32("devid")), r.string("type")));
        r.end();
        return new Message.DeviceList(list, complete);
    }

    static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > Wire.MAX_STRING) {
            // Our own strings (error texts, reasons) are cut rather than refused: the reply must go out.
            bytes = java.util.Arrays.copyOf(bytes, Wire.MAX_STRING);
        }
        b.putShort((short) bytes.length).put(bytes);
    }

    /** A bounds-checked reader over one body. */
    static final class Body {
        private final MessageType type;
        private final ByteBuffer b;

        Body(MessageType type, ByteBuffer body) {
            this.type = type;
            this.b = body.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }

        private void need(int n, String what) throws ProtocolException {
            if (b.remaining() < n)
                throw new ProtocolException(ErrorCode.BAD_MESSAGE, type + " truncated: " + what + " needs " + n + " bytes, " + b.remaining() + " left");
        }

        int u16() throws ProtocolException { need(2, "u16"); return Short.toUnsignedInt(b.getShort()); }

        int i32() throws ProtocolException { need(4, "u32"); return b.getInt(); }

        long i64() throws ProtocolException { need(8, "u64"); return b.getLong(); }

        DevId devid() throws ProtocolException { need(4, "devid"); return new DevId(b.getInt()); }

        String string() throws ProtocolException {
            int len = u16();
            if (len > Wire.MAX_STRING) throw new ProtocolException(ErrorCode.BAD_MESSAGE, type + ": string of " + len + " bytes exceeds " + Wire.MAX_STRING);
            need(len, "string");
            ByteBuffer slice = b.slice(b.position(), len);
            b.position(b.position() + len);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(slice).toString();
            } catch (CharacterCodingException e) {
                throw new ProtocolException(ErrorCode.BAD_MESSAGE, type + ": string is not UTF-8");
            }
        }

        byte[] rest() {
            byte[] out = new byte[b.remaining()];
            b.get(out);
            return out;
        }

        void end() throws ProtocolException {
            if (b.hasRemaining())
                throw new ProtocolException(ErrorCode.BAD_MESSAGE, type + " has " + b.remaining() + " unexpected trailing bytes");
        }
    }
}
