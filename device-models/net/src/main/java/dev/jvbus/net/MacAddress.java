package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.HexFormat;

/**
 * 48-bit Ethernet addresses kept in the low bits of a {@code long}, so the switch handles them
 * without allocating. Byte 0 of the address is the most significant of the 48 bits.
 */
public final class MacAddress {
    private MacAddress() {}

    public static final long BROADCAST = 0xFFFF_FFFF_FFFFL;

    private static final ValueLayout.OfShort BE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** Reads 6 bytes at {@code offset}: the destination is at 0 of a frame, the source at 6. */
    public static long read(MemorySegment frame, long offset) {
        long hi = Short.toUnsignedLong(frame.get(BE_SHORT, offset));           // network byte order
        long lo = Integer.toUnsignedLong(frame.get(BE_INT, offset + 2));
        return (hi << 32) | lo;
    }

    public static void write(MemorySegment frame, long offset, long mac) {
        for (int i = 0; i < 6; i++) frame.set(ValueLayout.JAVA_BYTE, offset + i, (byte) (mac >>> (8 * (5 - i))));
    }

    /** Group (multicast or broadcast) addresses have the least significant bit of the first byte set. */
    public static boolean isGroup(long mac) {
        return (mac & 0x0100_0000_0000L) != 0;
    }

    public static long parse(String s) {
        String[] parts = s.trim().split("[:-]");
        if (parts.length != 6) throw new IllegalArgumentException("not a MAC address: '" + s + "'");
        long v = 0;
        for (String p : parts) {
            if (p.length() != 2) throw new IllegalArgumentException("not a MAC address: '" + s + "'");
            v = (v << 8) | HexFormat.fromHexDigits(p);
        }
        return v;
    }

    public static byte[] toBytes(long mac) {
        byte[] b = new byte[6];
        for (int i = 0; i < 6; i++) b[i] = (byte) (mac >>> (8 * (5 - i)));
        return b;
    }

    public static long fromBytes(byte[] b) {
        if (b.length != 6) throw new IllegalArgumentException("a MAC address is 6 bytes, got " + b.length);
        long v = 0;
        for (byte x : b) v = (v << 8) | (x & 0xff);
        return v;
    }

    public static String toString(long mac) {
        StringBuilder sb = new StringBuilder(17);
        for (int i = 5; i >= 0; i--) {
            sb.append(HexFormat.of().toHexDigits((byte) (mac >>> (8 * i))));
            if (i > 0) sb.append(':');
        }
        return sb.toString();
    }

    /** A locally administered unicast address derived from a seed (02:xx:...). */
    public static long local(long seed) {
        return 0x0200_0000_0000L | (seed & 0x00FF_FFFF_FFFFL);
    }
}
