package dev.jvbus.connector.shm.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A bounds-checked little-endian reader over a DEVCALL or REPLY payload. A short or over-long
 * payload is a {@link ErrorCode#BAD_MESSAGE} naming the verb, never an exception from a buffer.
 */
public final class PayloadReader {
    private final String what;
    private final ByteBuffer b;

    public PayloadReader(String what, byte[] payload) {
        this.what = what;
        this.b = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
    }

    private void need(int n, String field) throws ProtocolException {
        if (b.remaining() < n)
            throw new ProtocolException(ErrorCode.BAD_MESSAGE, what + " payload truncated: " + field + " needs " + n + " bytes, " + b.remaining() + " left");
    }

    public int u8(String field) throws ProtocolException { need(1, field); return Byte.toUnsignedInt(b.get()); }

    public int u16(String field) throws ProtocolException { need(2, field); return Short.toUnsignedInt(b.getShort()); }

    public int u32(String field) throws ProtocolException { need(4, field); return b.getInt(); }

    public long u64(String field) throws ProtocolException { need(8, field); return b.getLong(); }

    public String string(String field) throws ProtocolException {
        int len = u16(field + " length");
        need(len, field);
        byte[] bytes = new byte[len];
        b.get(bytes);
        return new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
    }

    public byte[] rest() {
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** The payload must end here. */
    public void end() throws ProtocolException {
        if (b.hasRemaining())
            throw new ProtocolException(ErrorCode.BAD_MESSAGE, what + " payload has " + b.remaining() + " unexpected trailing bytes");
    }
}
