package dev.jvbus.core.testing;

import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Builds and reads the few Ethernet frames the TAP tests exchange with a real kernel: ARP
 * request/reply and ICMP echo over IPv4, with real checksums. MACs are 6-byte arrays, IPv4
 * addresses 4-byte arrays; everything is network byte order.
 */
public final class TestFrames {
    public static final int ETH_ARP = 0x0806, ETH_IPV4 = 0x0800;
    public static final int ETH_HEADER = 14, MIN_FRAME = 60;
    public static final byte[] BROADCAST = {-1, -1, -1, -1, -1, -1};

    private TestFrames() {}

    public static byte[] ip(int a, int b, int c, int d) {
        return new byte[] {(byte) a, (byte) b, (byte) c, (byte) d};
    }

    /** A locally administered unicast MAC (02:...) from a seed. */
    public static byte[] localMac(int seed) {
        return new byte[] {0x02, 0x6a, 0x76, (byte) (seed >> 16), (byte) (seed >> 8), (byte) seed};
    }

    /** "Who has {@code targetIp}? Tell {@code senderIp}", broadcast, padded to 60 bytes. */
    public static byte[] arpRequest(byte[] senderMac, byte[] senderIp, byte[] targetIp) {
        return arp(1, BROADCAST, senderMac, senderIp, new byte[6], targetIp);
    }

    /** "{@code senderIp} is at {@code senderMac}", unicast to the asker. */
    public static byte[] arpReply(byte[] senderMac, byte[] senderIp, byte[] targetMac, byte[] targetIp) {
        return arp(2, targetMac, senderMac, senderIp, targetMac, targetIp);
    }

    private static byte[] arp(int op, byte[] dst, byte[] sha, byte[] spa, byte[] tha, byte[] tpa) {
        ByteBuffer b = ByteBuffer.allocate(MIN_FRAME);
        b.put(dst).put(sha).putShort((short) ETH_ARP);
        b.putShort((short) 1).putShort((short) ETH_IPV4).put((byte) 6).put((byte) 4).putShort((short) op);
        b.put(sha).put(spa).put(tha).put(tpa);
        return b.array();
    }

    /** An ICMP echo request (type 8) with id, seq and payload, in IPv4 with TTL 64. */
    public static byte[] icmpEchoRequest(byte[] srcMac, byte[] dstMac, byte[] srcIp, byte[] dstIp,
                                         int id, int seq, byte[] payload) {
        int icmpLen = 8 + payload.length, ipLen = 20 + icmpLen;
        ByteBuffer b = ByteBuffer.allocate(Math.max(MIN_FRAME, ETH_HEADER + ipLen));
        b.put(dstMac).put(srcMac).putShort((short) ETH_IPV4);
        int ip = b.position();
        b.put((byte) 0x45).put((byte) 0).putShort((short) ipLen).putShort((short) seq).putShort((short) 0x4000)
                .put((byte) 64).put((byte) 1).putShort((short) 0).put(srcIp).put(dstIp);
        b.putShort(ip + 10, (short) checksum(b.array(), ip, 20));
        int icmp = b.position();
        b.put((byte) 8).put((byte) 0).putShort((short) 0).putShort((short) id).putShort((short) seq).put(payload);
        b.putShort(icmp + 2, (short) checksum(b.array(), icmp, icmpLen));
        return b.array();
    }

    /** The Internet checksum (RFC 1071) of {@code len} bytes at {@code off}: the value to store. */
    public static int checksum(byte[] data, int off, int len) {
        long sum = 0;
        for (int i = 0; i + 1 < len; i += 2) sum += ((data[off + i] & 0xff) << 8) | (data[off + i + 1] & 0xff);
        if ((len & 1) != 0) sum += (data[off + len - 1] & 0xff) << 8;
        while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
        return (int) (~sum & 0xffff);
    }

    public static int etherType(byte[] f) {
        return f.length < ETH_HEADER ? -1 : ((f[12] & 0xff) << 8) | (f[13] & 0xff);
    }

    public static byte[] srcMac(byte[] f) { return Arrays.copyOfRange(f, 6, 12); }

    public static byte[] dstMac(byte[] f) { return Arrays.copyOfRange(f, 0, 6); }

    /** ARP opcode (1 request, 2 reply), or -1 if not an Ethernet/IPv4 ARP frame. */
    public static int arpOp(byte[] f) {
        if (etherType(f) != ETH_ARP || f.length < 42) return -1;
        return ((f[20] & 0xff) << 8) | (f[21] & 0xff);
    }

    public static byte[] arpSenderMac(byte[] f) { return Arrays.copyOfRange(f, 22, 28); }
    public static byte[] arpSenderIp(byte[] f) { return Arrays.copyOfRange(f, 28, 32); }
    public static byte[] arpTargetMac(byte[] f) { return Arrays.copyOfRange(f, 32, 38); }
    public static byte[] arpTargetIp(byte[] f) { return Arrays.copyOfRange(f, 38, 42); }

    /** A parsed ICMP echo message (type 0 reply, 8 request) with its checksums verified. */
    public record Echo(int type, byte[] srcIp, byte[] dstIp, int id, int seq, byte[] payload,
                       boolean ipChecksumOk, boolean icmpChecksumOk) {}

    /** The ICMP echo in {@code f}, or null when the frame is something else. */
    public static Echo echo(byte[] f) {
        if (etherType(f) != ETH_IPV4 || f.length < ETH_HEADER + 28) return null;
        int ip = ETH_HEADER, ihl = (f[ip] & 0x0f) * 4;
        if ((f[ip] >> 4) != 4 || f[ip + 9] != 1) return null;
        int total = ((f[ip + 2] & 0xff) << 8) | (f[ip + 3] & 0xff);
        if (total < ihl + 8 || ETH_HEADER + total > f.length) return null;
        int icmp = ip + ihl, type = f[icmp] & 0xff;
        if (type != 0 && type != 8) return null;
        int icmpLen = total - ihl;
        return new Echo(type, Arrays.copyOfRange(f, ip + 12, ip + 16), Arrays.copyOfRange(f, ip + 16, ip + 20),
                ((f[icmp + 4] & 0xff) << 8) | (f[icmp + 5] & 0xff), ((f[icmp + 6] & 0xff) << 8) | (f[icmp + 7] & 0xff),
                Arrays.copyOfRange(f, icmp + 8, icmp + icmpLen),
                checksum(f, ip, ihl) == 0, checksum(f, icmp, icmpLen) == 0);
    }
}
