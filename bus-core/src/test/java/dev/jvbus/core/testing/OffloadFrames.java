package dev.jvbus.core.testing;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Test frames with offloads, written apart from the code under test: TCP and UDP super-frames over IPv4
 * and IPv6 with their checksum field seeded as Linux seeds it for CHECKSUM_PARTIAL (the pseudo-header sum,
 * L4 length included, not inverted), and an RFC 1071 oracle.
 *
 * @param header the virtio_net_hdr fields: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
 */
public record OffloadFrames(byte[] frame, int flags, int gsoType, int hdrLen, int gsoSize, int csumStart, int csumOffset) {
    /** virtio_net_hdr flags and gso_type values (virtio 1.x 5.1.6). */
    public static final int NEEDS_CSUM = 1, DATA_VALID = 2, GSO_TCPV4 = 1, GSO_TCPV6 = 4, GSO_UDP_L4 = 5, GSO_ECN = 0x80;
    static final byte[] SRC4 = {10, 9, 0, 1}, DST4 = {10, 9, 0, 2};
    static final byte[] SRC6 = v6(1), DST6 = v6(2);
    public static final long DST_MAC = 0x0200_00ee_0002L, SRC_MAC = 0x0200_00ee_0001L;

    static byte[] v6(int last) {
        byte[] a = new byte[16];
        a[0] = (byte) 0xfd;
        a[1] = 0x09;
        a[15] = (byte) last;
        return a;
    }

    /** The 12-byte vnet header a TAP takes in front of the frame. */
    public byte[] vnetHeader() {
        ByteBuffer b = ByteBuffer.allocate(12).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put((byte) flags).put((byte) gsoType).putShort((short) hdrLen).putShort((short) gsoSize)
                .putShort((short) csumStart).putShort((short) csumOffset).putShort((short) 0);
        return b.array();
    }

    /**
     * A TCP super-frame: {@code payload} bytes after a TCP header with {@code optionWords} 32-bit option words,
     * flags {@code tcpFlags}, cut at {@code mss}; GSO_TCPV4/6 (with ECN if asked), NEEDS_CSUM.
     */
    public static OffloadFrames tcp(boolean v4, int payload, int mss, int tcpFlags, int optionWords, boolean ecn, int seed) {
        int thl = 20 + optionWords * 4;
        byte[] l4 = new byte[thl + payload];
        ByteBuffer t = ByteBuffer.wrap(l4);
        t.putShort((short) 40000).putShort((short) 5201).putInt(0xfffff000 + seed).putInt(0x01020304)
                .put((byte) ((thl / 4) << 4)).put((byte) tcpFlags).putShort((short) 502).putShort((short) 0).putShort((short) 0);
        for (int i = 0; i < optionWords; i++) t.putInt(i == 0 ? 0x0101080a : 0x11223344 + i);   // NOP NOP TS ...
        fill(l4, thl, seed);
        int gso = (v4 ? GSO_TCPV4 : GSO_TCPV6) | (ecn ? GSO_ECN : 0);
        return wrap(v4, 6, l4, 16, gso, mss);
    }

    /** A UDP super-frame (USO, GSO_UDP_L4): {@code payload} bytes cut at {@code mss}. */
    public static OffloadFrames udp(boolean v4, int payload, int mss, int seed) {
        byte[] l4 = new byte[8 + payload];
        ByteBuffer u = ByteBuffer.wrap(l4);
        u.putShort((short) 4000).putShort((short) 5000).putShort((short) Math.min(0xffff, l4.length)).putShort((short) 0);
        fill(l4, 8, seed);
        return wrap(v4, 17, l4, 6, GSO_UDP_L4, mss);
    }

    /** A plain UDP datagram with NEEDS_CSUM (no segmentation). */
    public static OffloadFrames udpPartial(boolean v4, int payload, int seed) {
        OffloadFrames f = udp(v4, payload, 1, seed);
        return new OffloadFrames(f.frame, NEEDS_CSUM, 0, 0, 0, f.csumStart, f.csumOffset);
    }

    private static void fill(byte[] b, int from, int seed) {
        for (int i = from; i < b.length; i++) b[i] = (byte) (seed * 131 + i * 7 + (i >> 8));
    }

    private static OffloadFrames wrap(boolean v4, int proto, byte[] l4, int csumOffset, int gso, int mss) {
        int l3len = v4 ? 20 : 40;
        ByteBuffer b = ByteBuffer.allocate(14 + l3len + l4.length);
        put48(b, DST_MAC);
        put48(b, SRC_MAC);
        if (v4) {
            b.putShort((short) 0x0800);
            b.put((byte) 0x45).put((byte) 0).putShort((short) Math.min(0xffff, 20 + l4.length)).putShort((short) 0x1234)
                    .putShort((short) 0x4000).put((byte) 64).put((byte) proto).putShort((short) 0).put(SRC4).put(DST4);
        } else {
            b.putShort((short) 0x86dd);
            b.putInt(0x6000_0000).putShort((short) l4.length).put((byte) proto).put((byte) 64).put(SRC6).put(DST6);
        }
        b.put(l4);
        byte[] f = b.array();
        int l3 = 14, start = 14 + l3len;
        if (v4) {
            int c = finish(sum(f, l3, 20, 0));
            f[l3 + 10] = (byte) (c >> 8);
            f[l3 + 11] = (byte) c;
        }
        long seed = pseudo(f, v4, proto, l4.length);
        int s = fold(seed);                       // the seed is the folded sum, not inverted (Linux's ~csum_tcpudp_magic)
        f[start + csumOffset] = (byte) (s >> 8);
        f[start + csumOffset + 1] = (byte) s;
        return new OffloadFrames(f, NEEDS_CSUM, gso, 14 + l3len + (proto == 6 ? (l4[12] >> 4 & 15) * 4 : 8), mss,
                start, csumOffset);
    }

    private static void put48(ByteBuffer b, long v) {
        for (int i = 5; i >= 0; i--) b.put((byte) (v >>> (8 * i)));
    }

    public static long pseudo(byte[] f, boolean v4, int proto, int l4len) {
        return v4 ? sum(f, 14 + 12, 8, proto + l4len) : sum(f, 14 + 8, 32, proto + l4len);
    }

    public static long sum(byte[] f, int from, int len, long sum) {
        int i = from, end = from + len;
        for (; i + 1 < end; i += 2) sum += ((f[i] & 0xff) << 8) | (f[i + 1] & 0xff);
        if (i < end) sum += (f[i] & 0xff) << 8;
        return sum;
    }

    public static int fold(long sum) {
        while ((sum >>> 16) != 0) sum = (sum & 0xffff) + (sum >>> 16);
        return (int) sum;
    }

    public static int finish(long sum) {
        return ~fold(sum) & 0xffff;
    }

    /** Completes a NEEDS_CSUM frame as the spec says (sum from csumStart to the end, seed included); 0 as 0xffff. */
    public static byte[] completed(byte[] f, int csumStart, int csumOffset) {
        byte[] out = f.clone();
        int c = finish(sum(out, csumStart, out.length - csumStart, 0));
        if (c == 0) c = 0xffff;
        out[csumStart + csumOffset] = (byte) (c >> 8);
        out[csumStart + csumOffset + 1] = (byte) c;
        return out;
    }

    /** True if the frame's IPv4 header checksum (if IPv4) and its TCP/UDP checksum verify. */
    public static boolean checksumsVerify(byte[] f) {
        boolean v4 = (f[12] & 0xff) == 0x08;
        int l4 = v4 ? 14 + (f[14] & 15) * 4 : 14 + 40;
        if (v4 && fold(sum(f, 14, l4 - 14, 0)) != 0xffff) return false;
        int proto = v4 ? f[14 + 9] & 0xff : f[14 + 6] & 0xff;
        return fold(sum(f, l4, f.length - l4, pseudo(f, v4, proto, f.length - l4))) == 0xffff;
    }

    @Override
    public String toString() {
        return "OffloadFrames[" + frame.length + " bytes, flags " + flags + ", gso " + gsoType + "/" + gsoSize + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof OffloadFrames f && Arrays.equals(frame, f.frame) && flags == f.flags && gsoType == f.gsoType;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(frame);
    }
}
