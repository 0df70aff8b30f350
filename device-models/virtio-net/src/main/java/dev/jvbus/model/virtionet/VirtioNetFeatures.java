package dev.jvbus.model.virtionet;

import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.VirtioFeatures;

/**
 * virtio-net feature bits (virtio 1.x section 5.1.3; Linux {@code include/uapi/linux/virtio_net.h}).
 * {@link #OFFERED} is what this model offers; the other constants are named so logs and operators can
 * read what a driver asked for, and so that leaving a bit out is a visible decision.
 *
 * <p>Not offered, and why:
 * <ul>
 * <li>HOST_TSO4/6, HOST_UFO, HOST_ECN, GUEST_TSO4/6, GUEST_UFO, GUEST_ECN: the switch carries bare
 *     Ethernet frames with no virtio_net_hdr, so a GSO frame could neither pass through intact to a
 *     peer that negotiated it nor be segmented here (no software TSO/UFO yet).</li>
 * <li>CTRL_VQ and its dependants (CTRL_RX, CTRL_VLAN, GUEST_ANNOUNCE, CTRL_MAC_ADDR, MQ): not yet
 *     (the queue layout keeps index 2 for the control queue; MQ would put it at 2N).</li>
 * </ul>
 */
public final class VirtioNetFeatures {
    private VirtioNetFeatures() {}

    public static final FeatureBit CSUM = new FeatureBit(0, "VIRTIO_NET_F_CSUM",
            "device handles packets with partial checksum (NEEDS_CSUM on tx)");
    public static final FeatureBit GUEST_CSUM = new FeatureBit(1, "VIRTIO_NET_F_GUEST_CSUM",
            "driver handles packets with partial checksum on rx");
    public static final FeatureBit MTU = new FeatureBit(3, "VIRTIO_NET_F_MTU", "config space mtu is valid");
    public static final FeatureBit MAC = new FeatureBit(5, "VIRTIO_NET_F_MAC", "config space mac is valid");
    public static final FeatureBit MRG_RXBUF = new FeatureBit(15, "VIRTIO_NET_F_MRG_RXBUF",
            "driver can merge receive buffers (num_buffers in the header)");
    public static final FeatureBit STATUS = new FeatureBit(16, "VIRTIO_NET_F_STATUS", "config space status is valid");

    // Named, never offered (see the class comment).
    public static final int GUEST_TSO4 = 7, GUEST_TSO6 = 8, GUEST_ECN = 9, GUEST_UFO = 10;
    public static final int HOST_TSO4 = 11, HOST_TSO6 = 12, HOST_ECN = 13, HOST_UFO = 14;
    public static final int CTRL_VQ = 17, CTRL_RX = 18, CTRL_VLAN = 19, GUEST_ANNOUNCE = 21, MQ = 22, CTRL_MAC_ADDR = 23;

    /** Everything this model offers (the operator's limit mask may take bits away). */
    public static final FeatureCatalog OFFERED = FeatureCatalog.of(
            CSUM, GUEST_CSUM, MTU, MAC, MRG_RXBUF, STATUS,
            VirtioFeatures.INDIRECT_DESC, VirtioFeatures.EVENT_IDX, VirtioFeatures.VERSION_1);
}
