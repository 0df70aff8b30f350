package dev.jvbus.model.virtionet;

import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.FeatureRequirement;
import java.util.List;
import dev.jvbus.core.feature.VirtioFeatures;

/**
 * virtio-net feature bits (virtio 1.x section 5.1.3; Linux {@code include/uapi/linux/virtio_net.h}).
 * {@link #OFFERED} is what this model offers; the other constants are named so logs and operators can
 * read what a driver asked for, and so that leaving a bit out is a visible decision.
 *
 * <p>Not offered, and why:
 * <ul>
 * <li>HOST_UFO, GUEST_UFO: UDP fragmentation offload. Linux guests stopped sending UFO in 4.14 (the
 *     guest kernel here, 6.1, acks HOST_UFO but never uses it); USO (HOST_USO, GUEST_USO4/6, Linux 6.2 on)
 *     is offered instead, and the switch carries TCP and UDP (USO) segmentation only.</li>
 * <li>CTRL_VLAN: the switch has no VLAN filter to honour it.</li>
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

    /**
     * What a driver that negotiated {@code features} takes on rx, as {@link dev.jvbus.net.FrameOffload} TAKES_*
     * bits: checksums with GUEST_CSUM, and segmentation only with it too (as QEMU and the kernel's TAP do).
     */
    static int rxOffloads(long f) {
        if (!GUEST_CSUM.in(f)) return 0;
        int m = dev.jvbus.net.FrameOffload.TAKES_CSUM;
        if (GUEST_TSO4.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_TSO4;
        if (GUEST_TSO6.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_TSO6;
        if (GUEST_ECN.in(f) && (GUEST_TSO4.in(f) || GUEST_TSO6.in(f))) m |= dev.jvbus.net.FrameOffload.TAKES_TSO_ECN;
        if (GUEST_USO4.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_USO4;
        if (GUEST_USO6.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_USO6;
        return m;
    }

    /**
     * What the device takes on tx from a driver that negotiated {@code features}, as TAKES_* bits: a partial
     * checksum (completed for a receiver that cannot take it) and each segmentation type its HOST_* bit granted;
     * nothing at all from a driver that negotiated none of CSUM and the HOST_* bits. Such a driver's header says
     * nothing: the spec has it set flags to zero and gso_type to NONE (virtio 1.2, 5.1.6.2.1), Linux's header
     * says "if you don't specify GSO or CSUM features, you can simply ignore the header", and DPDK's vhost library
     * does not read it. Neither do we ({@code 0} here is the tx path's sign): at 64 B the header's line is one of
     * the three a frame costs us and the front-end's core (benchmarks/README, session 13).
     */
    static int txOffloads(long f) {
        int m = 0;
        if (HOST_TSO4.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_TSO4;
        if (HOST_TSO6.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_TSO6;
        if (HOST_ECN.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_TSO_ECN;
        if (HOST_USO.in(f)) m |= dev.jvbus.net.FrameOffload.TAKES_USO4 | dev.jvbus.net.FrameOffload.TAKES_USO6;
        return m != 0 || CSUM.in(f) ? m | dev.jvbus.net.FrameOffload.TAKES_CSUM : 0;
    }

    public static final FeatureBit CSUM = new FeatureBit(0, "VIRTIO_NET_F_CSUM",
            "device handles packets with partial checksum (NEEDS_CSUM on tx)");
    public static final FeatureBit GUEST_CSUM = new FeatureBit(1, "VIRTIO_NET_F_GUEST_CSUM",
            "driver handles packets with partial checksum on rx");
    public static final FeatureBit MTU = new FeatureBit(3, "VIRTIO_NET_F_MTU", "config space mtu is valid");
    public static final FeatureBit MAC = new FeatureBit(5, "VIRTIO_NET_F_MAC", "config space mac is valid");
    public static final FeatureBit MRG_RXBUF = new FeatureBit(15, "VIRTIO_NET_F_MRG_RXBUF",
            "driver can merge receive buffers (num_buffers in the header)");
    public static final FeatureBit STATUS = new FeatureBit(16, "VIRTIO_NET_F_STATUS", "config space status is valid");

    // Segmentation offloads: the frame and its header go through the switch (dev.jvbus.net.FrameOffload); a
    // receiver that did not take them gets them segmented in software. TSO and USO need CSUM (the spec's rule).
    public static final FeatureBit GUEST_TSO4 = new FeatureBit(7, "VIRTIO_NET_F_GUEST_TSO4", "driver can receive TSOv4");
    public static final FeatureBit GUEST_TSO6 = new FeatureBit(8, "VIRTIO_NET_F_GUEST_TSO6", "driver can receive TSOv6");
    public static final FeatureBit GUEST_ECN = new FeatureBit(9, "VIRTIO_NET_F_GUEST_ECN", "driver can receive TSO with ECN");
    public static final FeatureBit HOST_TSO4 = new FeatureBit(11, "VIRTIO_NET_F_HOST_TSO4", "device can receive TSOv4");
    public static final FeatureBit HOST_TSO6 = new FeatureBit(12, "VIRTIO_NET_F_HOST_TSO6", "device can receive TSOv6");
    public static final FeatureBit HOST_ECN = new FeatureBit(13, "VIRTIO_NET_F_HOST_ECN", "device can receive TSO with ECN");
    public static final FeatureBit GUEST_USO4 = new FeatureBit(54, "VIRTIO_NET_F_GUEST_USO4", "driver can receive USOv4");
    public static final FeatureBit GUEST_USO6 = new FeatureBit(55, "VIRTIO_NET_F_GUEST_USO6", "driver can receive USOv6");
    public static final FeatureBit HOST_USO = new FeatureBit(56, "VIRTIO_NET_F_HOST_USO", "device can receive USO");
    // Named, never offered (see the class comment): declared here once, for the requirements and for what a driver asked.
    public static final FeatureBit GUEST_UFO = new FeatureBit(10, "VIRTIO_NET_F_GUEST_UFO", "driver can receive UFO (not offered)");
    public static final FeatureBit HOST_UFO = new FeatureBit(14, "VIRTIO_NET_F_HOST_UFO", "device can receive UFO (not offered)");
    public static final FeatureBit CTRL_VLAN = new FeatureBit(19, "VIRTIO_NET_F_CTRL_VLAN", "control channel VLAN filtering (not offered)");

    /**
     * Multiqueue: {@code max_virtqueue_pairs} pairs (the device's {@code queue-pairs}), the control queue after them;
     * the driver picks how many carry traffic with MQ_VQ_PAIRS_SET (one until it does). Each tx queue has its own
     * worker; rx frames go to a pair by a flow hash ({@link FlowHash}), so one flow stays on one rx queue.
     */
    public static final FeatureBit MQ = new FeatureBit(22, "VIRTIO_NET_F_MQ",
            "multiqueue: up to max_virtqueue_pairs rx/tx queue pairs, one flow per rx queue");

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
            HOST_TSO4, HOST_TSO6, HOST_ECN, HOST_USO, GUEST_TSO4, GUEST_TSO6, GUEST_ECN, GUEST_USO4, GUEST_USO6,
            CTRL_VQ, CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR, CTRL_GUEST_OFFLOADS, GUEST_ANNOUNCE, MQ,
            VirtioFeatures.INDIRECT_DESC, VirtioFeatures.EVENT_IDX, VirtioFeatures.VERSION_1, VirtioFeatures.IN_ORDER);

    // ---- what the features require of each other (virtio 1.x 5.1.3.1, "Feature bit requirements") ----

    /**
     * The spec's requirements among virtio-net features, and two of this model's: CTRL_GUEST_OFFLOADS and
     * CTRL_RX_EXTRA are commands on the control queue, so they need it (and the RX class) as CTRL_RX does. Rules for
     * features the model does not offer say nothing until it does (CTRL_VLAN, the UFOs).
     */
    public static final List<FeatureRequirement> REQUIREMENTS = List.of(
            FeatureRequirement.of(GUEST_TSO4, GUEST_CSUM),
            FeatureRequirement.of(GUEST_TSO6, GUEST_CSUM),
            FeatureRequirement.anyOf(GUEST_ECN, GUEST_TSO4, GUEST_TSO6),
            FeatureRequirement.of(GUEST_UFO, GUEST_CSUM),
            FeatureRequirement.of(GUEST_USO4, GUEST_CSUM),
            FeatureRequirement.of(GUEST_USO6, GUEST_CSUM),
            FeatureRequirement.of(HOST_TSO4, CSUM),
            FeatureRequirement.of(HOST_TSO6, CSUM),
            FeatureRequirement.anyOf(HOST_ECN, HOST_TSO4, HOST_TSO6),
            FeatureRequirement.of(HOST_UFO, CSUM),
            FeatureRequirement.of(HOST_USO, CSUM),
            FeatureRequirement.of(CTRL_RX, CTRL_VQ),
            FeatureRequirement.of(CTRL_VLAN, CTRL_VQ),
            FeatureRequirement.of(GUEST_ANNOUNCE, CTRL_VQ),
            FeatureRequirement.of(MQ, CTRL_VQ),
            FeatureRequirement.of(CTRL_MAC_ADDR, CTRL_VQ),
            FeatureRequirement.of(CTRL_GUEST_OFFLOADS, CTRL_VQ),
            FeatureRequirement.of(CTRL_RX_EXTRA, CTRL_RX));

    /** {@link #OFFERED} with {@link #REQUIREMENTS}: what the model hands the bus. */
    public static final FeatureCatalog CATALOG = OFFERED.requiring(REQUIREMENTS);
}
