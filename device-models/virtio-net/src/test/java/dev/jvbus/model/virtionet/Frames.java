package dev.jvbus.model.virtionet;

import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;

/**
 * Test frames: Ethernet header (dst, src, EtherType 0x88b5, the local experimental one), then a
 * sequence number and a pattern derived from it and the length, so a frame can be checked byte for byte.
 */
final class Frames {
    private Frames() {}

    static final int ETHERTYPE = 0x88b5;

    static byte[] frame(long dst, long src, int length, int seq) {
        byte[] f = new byte[length];
        ByteBuffer b = ByteBuffer.wrap(f);
        b.put(MacAddress.toBytes(dst)).put(MacAddress.toBytes(src)).putShort((short) ETHERTYPE).putInt(seq);
        for (int i = 18; i < length; i++) f[i] = (byte) (seq * 31 + i * 7 + length);
        return f;
    }

    static int seq(byte[] f) {
        return ByteBuffer.wrap(f).getInt(14);
    }

    static boolean intact(byte[] f) {
        return java.util.Arrays.equals(f, frame(MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 0, 6)),
                MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 6, 12)), f.length, seq(f)));
    }
}
