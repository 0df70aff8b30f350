package dev.jvbus.app.fleet;

import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A frame of the test stream, as it is on the wire (60 bytes of Ethernet): broadcast destination, the
 * sender's MAC, EtherType 0x88b5 (local experimental), the sequence number (little-endian u64) at
 * byte 14, then 38 bytes that follow from the sequence number, so a corrupted frame is seen as one.
 */
final class StreamFrame {
    static final int LENGTH = 60;
    static final int ETHERTYPE = 0x88b5;
    static final long BROADCAST = 0xffff_ffff_ffffL;
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private StreamFrame() { }

    static void write(MemorySegment seg, long at, long mac, long seq) {
        MacAddress.write(seg, at, BROADCAST);
        MacAddress.write(seg, at + 6, mac);
        seg.set(BE16, at + 12, (short) ETHERTYPE);
        seg.set(LE64, at + 14, seq);
        for (int i = 22; i < LENGTH; i++) seg.set(ValueLayout.JAVA_BYTE, at + i, pattern(seq, i));
    }

    static long seq(MemorySegment seg, long at) {
        return seg.get(LE64, at + 14);
    }

    static boolean intact(MemorySegment seg, long at, long seq) {
        for (int i = 22; i < LENGTH; i++) if (seg.get(ValueLayout.JAVA_BYTE, at + i) != pattern(seq, i)) return false;
        return true;
    }

    private static byte pattern(long seq, int i) {
        return (byte) (seq * 31 + i);
    }
}
