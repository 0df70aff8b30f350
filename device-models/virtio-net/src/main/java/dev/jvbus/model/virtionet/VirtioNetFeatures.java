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
 * <li>CTRL_VLAN: the switch has no VLAN filter to honour it. MQ: one queue pair yet (the control
 *     queue sits after the pairs, at 2N, so more pairs move it without changing its code).</li>
 * </ul>
 *
 * <p>The control queue's commands ({@link ControlQueue}) each come with a bit of their own, so an
 * operator limits them by name like any other feature.
 *
 * <p>VIRTIO_F_IN_ORDER is offered: every queue completes buffers in the order it took them (tx pushes
 * each batch in pop order; rx fills buffers in pop order and gives back unfinished ones newest first),
 * so the ring returns each batch as one used element.
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
    public static final int CTRL_VLAN = 19, MQ = 22;

    public static final FeatureBit CTRL_GUEST_OFFLOADS = new FeatureBit(2, "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS",
            "driver turns negotiated guest offloads on and off on the control queue");
    public static final FeatureBit CTRL_VQ = new FeatureBit(17, "VIRTIO_NET_F_CTRL_VQ", "control channel available");
    public static final FeatureBit CTRL_RX = new FeatureBit(18, "VIRTIO_NET_F_CTRL_RX",
            "rx mode control: promiscuous, all-multicast, MAC filter tables");
    public static final FeatureBit CTRL_RX_EXTRA = new FeatureBit(20, "VIRTIO_NET_F_CTRL_RX_EXTRA",
            "extra rx mode control: all-unicast, no multicast, no unicast, no broadcast");
    public static final FeatureBit GUEST_ANNOUNCE = new FeatureBit(21, "VIRTIO_NET_F_GUEST_ANNOUNCE",
            "driver sends gratuitous packets when the device asks (after a restore or migration)");
    public static final FeatureBit CTRL_MAC_ADDR = new FeatureBit(23, "VIRTIO_NET_F_CTRL_MAC_ADDR",
            "driver sets the MAC address on the control queue");

    /** Everything this model offers (the operator's limit mask may take bits away). */
    public static final FeatureCatalog OFFERED = FeatureCatalog.of(
            CSUM, GUEST_CSUM, MTU, MAC, MRG_RXBUF, STATUS,
            CTRL_VQ, CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR, CTRL_GUEST_OFFLOADS, GUEST_ANNOUNCE,
            VirtioFeatures.INDIRECT_DESC, VirtioFeatures.EVENT_IDX, VirtioFeatures.VERSION_1, VirtioFeatures.IN_ORDER);
}
