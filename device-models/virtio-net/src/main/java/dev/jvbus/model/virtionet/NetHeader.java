package dev.jvbus.model.virtionet;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * {@code struct virtio_net_hdr_v1} (virtio 1.x section 5.1.6), in front of every frame on both
 * queues. Little-endian. 12 bytes with VERSION_1 or MRG_RXBUF; a legacy driver without either uses
 * the first 10 (no num_buffers).
 *
 * <pre>
 * u8 flags; u8 gso_type; le16 hdr_len; le16 gso_size; le16 csum_start; le16 csum_offset; le16 num_buffers;
 * </pre>
 */
final class NetHeader {
    private NetHeader() {}

    static final int SIZE = 12;
    static final int LEGACY_SIZE = 10;

    static final int FLAGS = 0;
    static final int GSO_TYPE = 1;
    static final int HDR_LEN = 2;
    static final int GSO_SIZE = 4;
    static final int CSUM_START = 6;
    static final int CSUM_OFFSET = 8;
    static final int NUM_BUFFERS = 10;

    static final int F_NEEDS_CSUM = 1;
    static final int F_DATA_VALID = 2;
    static final int GSO_NONE = 0;

    static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    static int u16(MemorySegment s, long at) {
        return s.get(LE16, at) & 0xffff;
    }

    static int u8(MemorySegment s, long at) {
        return s.get(ValueLayout.JAVA_BYTE, at) & 0xff;
    }
}
