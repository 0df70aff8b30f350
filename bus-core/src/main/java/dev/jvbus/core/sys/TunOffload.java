package dev.jvbus.core.sys;

import java.util.EnumSet;
import java.util.Set;

/**
 * The offloads a TAP may hand to its reader ({@code TUN_F_*} of {@code TUNSETOFFLOAD}): frames
 * with a partial checksum (CSUM) or larger than the MTU for segmentation (TSO4/6, UFO, USO4/6),
 * described by the virtio_net_hdr in front. They describe what the reader (the guest) can take;
 * what we write into the TAP may carry offload requests in its header regardless.
 */
public enum TunOffload {
    CSUM(0x01), TSO4(0x02), TSO6(0x04), TSO_ECN(0x08), UFO(0x10), USO4(0x20), USO6(0x40);

    final int bit;

    TunOffload(int bit) {
        this.bit = bit;
    }

    static int mask(Set<TunOffload> offloads) {
        int m = 0;
        for (TunOffload o : offloads) m |= o.bit;
        return m;
    }

    // virtio-net feature bits (virtio 1.x, 5.1.3) a driver acks when it can receive these offloads.
    private static final int GUEST_CSUM = 1, GUEST_TSO4 = 7, GUEST_TSO6 = 8, GUEST_ECN = 9, GUEST_UFO = 10,
            GUEST_USO4 = 54, GUEST_USO6 = 55;

    /**
     * The offloads to set on the TAP behind a virtio-net device whose driver negotiated
     * {@code features}, as QEMU does: segmentation offloads only together with GUEST_CSUM, which
     * is what the kernel requires too.
     */
    public static Set<TunOffload> forVirtioGuestFeatures(long features) {
        Set<TunOffload> s = EnumSet.noneOf(TunOffload.class);
        if (!has(features, GUEST_CSUM)) return s;
        s.add(CSUM);
        if (has(features, GUEST_TSO4)) s.add(TSO4);
        if (has(features, GUEST_TSO6)) s.add(TSO6);
        if (has(features, GUEST_ECN) && (s.contains(TSO4) || s.contains(TSO6))) s.add(TSO_ECN);
        if (has(features, GUEST_UFO)) s.add(UFO);
        if (has(features, GUEST_USO4)) s.add(USO4);
        if (has(features, GUEST_USO6)) s.add(USO6);
        return s;
    }

    private static boolean has(long features, int bit) {
        return (features & (1L << bit)) != 0;
    }
}
