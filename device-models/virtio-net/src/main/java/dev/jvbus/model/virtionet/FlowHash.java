package dev.jvbus.model.virtionet;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Which rx queue a frame goes to on a multiqueue device: a hash of its flow, so every frame of one TCP or
 * UDP connection lands on the same rx queue (the guest sees it in order, on one CPU), and different flows
 * spread over the pairs the driver enabled.
 *
 * <p>The flow is IPv4 or IPv6 source and destination address, plus the TCP or UDP ports when the frame
 * carries them (not an IPv4 fragment after the first, no IPv6 extension header), behind at most one VLAN
 * tag. The hash is symmetric (both directions of a connection hash alike: addresses and ports are combined
 * with XOR before mixing), which is what a back-end wants when it also picks queues for replies. Frames that
 * are not IP (ARP, LLDP) have no flow: {@link #NONE}, and go to the first pair, as virtio's RSS sends
 * unclassified packets to its default queue.
 *
 * <p>Read from the frame where it lies (guest memory or the switch's buffer): no copy, nothing allocated;
 * a short or odd frame hashes as far as it can be read, never past its length.
 */
final class FlowHash {
    private FlowHash() {}

    /** A frame without a flow (not IPv4/IPv6, or too short to say). */
    static final int NONE = -1;

    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final int ETH = 14, VLAN = 0x8100, QINQ = 0x88a8, IPV4 = 0x0800, IPV6 = 0x86dd, TCP = 6, UDP = 17;

    /** The flow's hash, non-negative, or {@link #NONE}. */
    static int of(MemorySegment f, long off, int len) {
        if (len < ETH) return NONE;
        int l3 = ETH;
        int type = f.get(BE16, off + 12) & 0xffff;
        if (type == VLAN || type == QINQ) {
            if (len < ETH + 4) return NONE;
            type = f.get(BE16, off + 16) & 0xffff;
            l3 += 4;
        }
        long p = off + l3;
        int rest = len - l3;
        int h, proto, l4;
        if (type == IPV4) {
            if (rest < 20 || (f.get(ValueLayout.JAVA_BYTE, p) & 0xf0) != 0x40) return NONE;
            int ihl = (f.get(ValueLayout.JAVA_BYTE, p) & 0x0f) * 4;
            h = f.get(BE32, p + 12) ^ f.get(BE32, p + 16);
            proto = f.get(ValueLayout.JAVA_BYTE, p + 9) & 0xff;
            boolean laterFragment = (f.get(BE16, p + 6) & 0x1fff) != 0;   // no ports in it: hash the addresses alone
            l4 = laterFragment || ihl < 20 ? -1 : ihl;
        } else if (type == IPV6) {
            if (rest < 40 || (f.get(ValueLayout.JAVA_BYTE, p) & 0xf0) != 0x60) return NONE;
            h = 0;
            for (int i = 8; i < 40; i += 4) h ^= f.get(BE32, p + i);     // source and destination, word by word
            proto = f.get(ValueLayout.JAVA_BYTE, p + 6) & 0xff;
            l4 = 40;
        } else {
            return NONE;
        }
        h = h * 31 + proto;
        if ((proto == TCP || proto == UDP) && l4 > 0 && rest >= l4 + 4)
            h ^= (f.get(BE16, p + l4) ^ f.get(BE16, p + l4 + 2)) & 0xffff;   // source port ^ destination port
        return mix(h) & 0x7fff_ffff;
    }

    /** The pair among {@code n} (n >= 1) a flow hash picks: spread evenly, no division. */
    static int pick(int hash, int n) {
        return hash == NONE ? 0 : (int) (((hash & 0xffff_ffffL) * n) >>> 31);
    }

    /** murmur3's 32-bit finaliser: every input bit moves every output bit, so close addresses spread. */
    private static int mix(int h) {
        h ^= h >>> 16;
        h *= 0x85eb_ca6b;
        h ^= h >>> 13;
        h *= 0xc2b2_ae35;
        h ^= h >>> 16;
        return h;
    }
}
