package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Offer, operator limits, parameters, config space, and the header's checksum offload. */
class VirtioNetFeatureTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    final Container container = VirtioNetExchangeTest.newContainer();
    final List<GuestNet> guests = new ArrayList<>();

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    GuestNet guest(long limit, Map<String, String> params) {
        GuestNet g = new GuestNet(container.addDevice(VirtioNetModel.TYPE, limit, params), 256);
        guests.add(g);
        return g;
    }

    @Test
    void theModelIsFoundAndOffersTheVirtioNetBits() {
        var model = Bus.withDiscoveredModels().models().model("virtio-net").orElseThrow();
        assertThat(model.virtioDeviceId()).isEqualTo(1);
        assertThat(model.features().names(model.features().mask())).containsExactlyInAnyOrder(
                "VIRTIO_NET_F_CSUM", "VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_NET_F_MTU", "VIRTIO_NET_F_MAC",
                "VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_STATUS", "VIRTIO_F_INDIRECT_DESC", "VIRTIO_RING_F_EVENT_IDX",
                "VIRTIO_F_VERSION_1", "VIRTIO_NET_F_HOST_TSO4", "VIRTIO_NET_F_HOST_TSO6", "VIRTIO_NET_F_HOST_ECN",
                "VIRTIO_NET_F_HOST_USO", "VIRTIO_NET_F_GUEST_TSO4", "VIRTIO_NET_F_GUEST_TSO6", "VIRTIO_NET_F_GUEST_ECN",
                "VIRTIO_NET_F_GUEST_USO4", "VIRTIO_NET_F_GUEST_USO6", "VIRTIO_NET_F_MQ",
                "VIRTIO_F_IN_ORDER", "VIRTIO_NET_F_CTRL_VQ", "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_CTRL_RX_EXTRA",
                "VIRTIO_NET_F_CTRL_MAC_ADDR", "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS", "VIRTIO_NET_F_GUEST_ANNOUNCE");
        assertThat(model.queues().queue(0).name()).isEqualTo("rx0");
        assertThat(model.queues().queue(1).name()).isEqualTo("tx0");
    }

    @Test
    void configSpaceHoldsMacLinkUpPairsAndMtu() {
        GuestNet g = guest(-1L, Map.of("mac", "52:54:00:12:34:56", "mtu", "9000", "network", "lan"));
        assertThat(g.a.readConfig(0, 12)).containsExactly(0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, VirtioNetParams.DEFAULT_PAIRS, 0, 0x28, 0x23);
        GuestNet d = guest(-1L, Map.of());
        long mac = d.mac();
        assertThat(MacAddress.isGroup(mac)).isFalse();
        assertThat(mac & 0x0200_0000_0000L).as("locally administered").isNotZero();
        assertThat(GuestNet.le16(d.a.readConfig(VirtioNetModel.CONFIG_MTU, 2))).isEqualTo(1500);
    }

    @Test
    void unknownOrBadParametersAreRefusedByName() {
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("speed", "10G")))
                .isInstanceOf(BusException.class).hasMessageContaining("unknown parameter 'speed'").hasMessageContaining("mac, mac-spoof-check, mtu, network");
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mtu", "9001")))
                .hasMessageContaining("'mtu' must be in 68..9000");
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", "ff:ff:ff:ff:ff:ff")))
                .hasMessageContaining("unicast");
    }

    @Test
    void withMrgRxbufLimitedAwayTheDriverCannotNegotiateItAndBigBuffersCarryTheData() throws Exception {
        GuestNet limited = guest(~VirtioNetFeatures.MRG_RXBUF.mask(), Map.of("mtu", "9000"));
        assertThat(limited.a.offeredFeatures() & VirtioNetFeatures.MRG_RXBUF.mask()).isZero();
        limited.a.writeStatus(ACKNOWLEDGE | DRIVER);
        limited.a.ackFeatures(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MRG_RXBUF.mask());
        assertThatThrownBy(() -> limited.a.addStatus(FEATURES_OK))
                .isInstanceOf(FeatureNegotiationException.class).hasMessageContaining("VIRTIO_NET_F_MRG_RXBUF");
        assertThat(limited.a.status().has(FEATURES_OK)).isFalse();
        limited.a.reset();

        limited.negotiate(-1L).start();
        assertThat(limited.mergeable).isFalse();
        assertThat(limited.rxBufLen).isEqualTo(12 + 9000 + 18);
        GuestNet peer = guest(-1L, Map.of("mtu", "9000")).negotiate(-1L).start();
        limited.postRx(256);
        peer.postRx(256);
        for (int size : new int[] {60, 1514, 9014}) {
            peer.send(frame(MacAddress.BROADCAST, peer.mac(), size, size), GuestNet.TxLayout.SPLIT);
            limited.send(frame(peer.mac(), limited.mac(), size, size), GuestNet.TxLayout.INDIRECT);
        }
        for (GuestNet g : List.of(limited, peer)) {
            List<GuestNet.Rx> got = g.receive(3, WAIT);
            assertThat(got).extracting(r -> r.frame().length).containsExactly(60, 1514, 9014);
            assertThat(got).allSatisfy(r -> assertThat(Frames.intact(r.frame())).isTrue());
            if (g == limited) assertThat(got).extracting(GuestNet.Rx::numBuffers).containsOnly(1);
            else assertThat(got).extracting(GuestNet.Rx::numBuffers).containsExactly(1, 1, 6);
        }
    }

    @Test
    void needsCsumIsCompletedForADriverWithoutGuestCsumAndPassedOnToOneWithItAndBadOffsetsAreDropped() throws Exception {
        GuestNet a = guest(-1L, Map.of()).negotiate(-1L).start();
        // Without GUEST_CSUM, and so without the guest offloads that require it (virtio 1.x 5.1.3.1).
        GuestNet b = guest(-1L, Map.of()).negotiate(VirtioNetFeatures.CATALOG.withRequirementsMet(~VirtioNetFeatures.GUEST_CSUM.mask())).start();
        GuestNet c = guest(-1L, Map.of()).negotiate(-1L).start();
        assertThat(VirtioNetFeatures.CSUM.in(a.features)).isTrue();
        assertThat(VirtioNetFeatures.GUEST_CSUM.in(b.features)).isFalse();
        b.postRx(16);
        c.postRx(16);
        byte[] f = udpFrame(b.mac(), a.mac(), 333);
        a.send(f, GuestNet.TxLayout.SPLIT, NetHeader.F_NEEDS_CSUM, 34, 6);      // csum_start: UDP header, offset: its checksum
        a.send(f, GuestNet.TxLayout.ONE, NetHeader.F_NEEDS_CSUM, 34, f.length - 34 - 1);   // points past the frame
        byte[] toC = f.clone();
        System.arraycopy(MacAddress.toBytes(c.mac()), 0, toC, 0, 6);
        a.send(toC, GuestNet.TxLayout.ONE, NetHeader.F_NEEDS_CSUM, 34, 6);
        GuestNet.Rx rb = b.receive(1, WAIT).getFirst();
        byte[] got = rb.frame();
        assertThat(got).hasSize(f.length);
        assertThat(rb.flags()).as("no GUEST_CSUM: flags stay zero").isZero();
        assertThat(onesComplementOfUdp(got)).as("UDP checksum verifies").isEqualTo(0xffff);
        assertThat(ByteBuffer.wrap(got).getShort(40)).isNotZero();
        GuestNet.Rx rc = c.receive(1, WAIT).getFirst();
        assertThat(rc.flags()).as("GUEST_CSUM: the partial checksum is passed on").isEqualTo(NetHeader.F_NEEDS_CSUM);
        assertThat(rc.frame()).as("as the driver sent it, seed and all").isEqualTo(toC);
        a.drainTx(WAIT);
        assertThat(((VirtioNetDevice) a.a.function()).stats().txDropBadCsum()).isEqualTo(1);
        assertThat(b.receive(1, Duration.ofMillis(50))).isEmpty();
    }

    /**
     * A driver that negotiated none of CSUM and the HOST_* offloads has nothing to say in its tx header (virtio 1.2,
     * 5.1.6.2.1: flags zero, gso_type NONE), and the device does not read it. A header that says something anyway
     * changes nothing: NEEDS_CSUM with an offset past the frame (a driver with CSUM has that frame dropped) and a
     * GSO type it was never granted (dropped too) each arrive as sent, bare, at a receiver that takes partial
     * checksums and super-frames; nothing is counted as dropped.
     */
    @Test
    void aDriverWithoutTxOffloadsHasItsHeaderIgnoredAndItsFramesGoAsSent() throws Exception {
        GuestNet a = guest(-1L, Map.of()).negotiate(VirtioNetFeatures.CATALOG.withRequirementsMet(~VirtioNetFeatures.CSUM.mask())).start();
        GuestNet c = guest(-1L, Map.of()).negotiate(-1L).start();
        assertThat(VirtioNetFeatures.CSUM.in(a.features) || VirtioNetFeatures.HOST_TSO4.in(a.features)
                || VirtioNetFeatures.HOST_TSO6.in(a.features) || VirtioNetFeatures.HOST_USO.in(a.features)).isFalse();
        assertThat(VirtioNetFeatures.GUEST_CSUM.in(c.features) && VirtioNetFeatures.GUEST_TSO4.in(c.features)).isTrue();
        c.postRx(16);
        byte[] f = udpFrame(c.mac(), a.mac(), 333);
        a.send(f, GuestNet.TxLayout.ONE, NetHeader.F_NEEDS_CSUM, 34, f.length - 34 - 1);
        a.send(f, GuestNet.TxLayout.SPLIT, NetHeader.F_NEEDS_CSUM, 34, 6);
        a.send(f, GuestNet.TxLayout.ONE, NetHeader.F_NEEDS_CSUM, 1 /* TCPV4 */, 42, 100, 34, 6);
        List<GuestNet.Rx> got = c.receive(3, WAIT);
        assertThat(got).extracting(GuestNet.Rx::frame).containsExactly(f, f, f);
        assertThat(got).extracting(GuestNet.Rx::flags).as("bare frames: no partial checksum passed on").containsOnly(0);
        assertThat(got).extracting(GuestNet.Rx::gsoType).containsOnly(0);
        a.drainTx(WAIT);
        VirtioNetStats s = ((VirtioNetDevice) a.a.function()).stats();
        assertThat(s.txDropBadCsum() + s.txDropGso()).isZero();
        assertThat(s.txFrames()).isEqualTo(3);
    }

    /** IPv4/UDP frame whose checksum field holds the pseudo-header sum, as Linux leaves it for NEEDS_CSUM. */
    static byte[] udpFrame(long dst, long src, int payload) {
        int udpLen = 8 + payload, ipLen = 20 + udpLen;
        ByteBuffer b = ByteBuffer.allocate(14 + ipLen);
        b.put(MacAddress.toBytes(dst)).put(MacAddress.toBytes(src)).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) ipLen).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                .put(new byte[] {10, 0, 0, 1}).put(new byte[] {10, 0, 0, 2});
        b.putShort((short) 4000).putShort((short) 5000).putShort((short) udpLen).putShort((short) 0);
        for (int i = 0; i < payload; i++) b.put((byte) (i * 13 + 5));
        byte[] f = b.array();
        long pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + udpLen;
        while ((pseudo >>> 16) != 0) pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
        f[40] = (byte) (pseudo >>> 8);
        f[41] = (byte) pseudo;
        return f;
    }

    /** Sum over pseudo-header and UDP datagram: 0xffff when the checksum is right. */
    static int onesComplementOfUdp(byte[] f) {
        long sum = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + (f.length - 34);
        for (int i = 34; i < f.length; i += 2) sum += ((f[i] & 0xff) << 8) | (i + 1 < f.length ? f[i + 1] & 0xff : 0);
        while ((sum >>> 16) != 0) sum = (sum & 0xffff) + (sum >>> 16);
        return (int) sum;
    }
}
