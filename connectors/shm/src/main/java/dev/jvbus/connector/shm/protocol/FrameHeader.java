package dev.jvbus.connector.shm.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The 12-byte frame header: u32 length (whole frame), u16 type, u8 fd count, u8 reserved, u32 seq. Little-endian. */
public record FrameHeader(int length, int typeCode, int fdCount, int seq) {

    public int bodyLength() {
        return length - Wire.HEADER;
    }

    /**
     * Reads and checks a header. Only a length outside [12, MAX_FRAME] or a non-zero reserved byte is
     * fatal (BAD_FRAME): then the stream cannot be trusted to find the next frame. A bad type or fd
     * count is the body decoder's (recoverable) business.
     */
    public static FrameHeader read(ByteBuffer in) throws ProtocolException {
        ByteBuffer b = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int length = b.getInt();
        int type = Short.toUnsignedInt(b.getShort());
        int fds = Byte.toUnsignedInt(b.get());
        int reserved = Byte.toUnsignedInt(b.get());
        int seq = b.getInt();
        if (length < Wire.HEADER || length > Wire.MAX_FRAME)
            throw new ProtocolException(ErrorCode.BAD_FRAME, "frame length " + Integer.toUnsignedString(length)
                    + " outside " + Wire.HEADER + ".." + Wire.MAX_FRAME + "; closing the connection");
        if (reserved != 0)
            throw new ProtocolException(ErrorCode.BAD_FRAME, "reserved header byte is " + reserved + ", must be 0; closing the connection");
        return new FrameHeader(length, type, fds, seq);
    }

    public void write(ByteBuffer out) {
        ByteBuffer b = out.order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(length).putShort((short) typeCode).put((byte) fdCount).put((byte) 0).putInt(seq);
    }
}
