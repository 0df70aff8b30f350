package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.testing.OffloadFrames;
import dev.jvbus.net.MacAddress;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Segmentation offloads between virtio-net drivers on one switch: a driver granted HOST_TSO/USO sends a
 * super-frame with its header, and each receiver gets it in the form it negotiated: whole, header and
 * all (GUEST_TSO/USO), segmented with DATA_VALID (GUEST_CSUM only), or segmented and checksummed with a
 * zero header (neither). A GSO header the driver was not granted, or one that does not describe its frame,
 * is a counted drop. (The segments' bytes are proved equal to the kernel's in KernelSegmentationTest.)
 */
class VirtioNetOffloadTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    static final long GSO_RX = VirtioNetFeatures.GUEST_TSO4.mask() | VirtioNetFeatures.GUEST_TSO6.mask()
            | VirtioNetFeatures.GUEST_ECN.mask() | VirtioNetFeatures.GUEST_USO4.mask() | VirtioNetFeatures.GUEST_USO6.mask();
    static final long GSO_TX = VirtioNetFeatures.HOST_TSO4.mask() | VirtioNetFeatures.HOST_TSO6.mask()
            | VirtioNetFeatures.HOST_ECN.mask() | VirtioNetFeatures.HOST_USO.mask();

    final Container container = VirtioNetExchangeTest.newContainer();
    final List<GuestNet> guests = new ArrayList<>();

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    GuestNet guest(long want) throws Exception {
        GuestNet g = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(g);
        g.negotiate(want).start();
        g.postRx(256);
        return g;
    }

    static byte[] from(GuestNet g, OffloadFrames f) {
        byte[] b = f.frame().clone();
        Arrays.fill(b, 0, 6, (byte) 0xff);                                  // broadcast: every receiver gets it
        System.arraycopy(MacAddress.toBytes(g.mac()), 0, b, 6, 6);
        return b;
    }

    static void send(GuestNet g, OffloadFrames f, byte[] frame, int csumStart) throws Exception {
        g.send(frame, GuestNet.TxLayout.SPLIT, f.flags(), f.gsoType(), f.hdrLen(), f.gsoSize(), csumStart, f.csumOffset());
    }

    @Test
    void eachReceiverGetsASuperFrameInTheFormItNegotiated() throws Exception {
        GuestNet a = guest(-1L);
        GuestNet whole = guest(-1L), valid = guest(~GSO_RX), bare = guest(~(GSO_RX | VirtioNetFeatures.GUEST_CSUM.mask()));
        assertThat(a.features & GSO_TX).isEqualTo(GSO_TX);
        for (OffloadFrames f : List.of(OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 1),
                OffloadFrames.tcp(false, 9_000, 1428, 0x98, 3, true, 2),
                OffloadFrames.udp(true, 8_000, 1400, 3),
                OffloadFrames.udp(false, 5_000, 1000, 4))) {
            byte[] frame = from(a, f);
            send(a, f, frame, f.csumStart());
            int pieces = (f.frame().length - f.hdrLen() + f.gsoSize() - 1) / f.gsoSize();

            GuestNet.Rx w = whole.receive(1, WAIT).getFirst();
            assertThat(w.frame()).as("GUEST_TSO/USO: the super-frame as sent").isEqualTo(frame);
            assertThat(w.numBuffers()).isGreaterThan(1);
            assertThat(List.of(w.flags(), w.gsoType(), w.gsoSize(), w.csumStart(), w.csumOffset()))
                    .containsExactly(OffloadFrames.NEEDS_CSUM, f.gsoType(), f.gsoSize(), f.csumStart(), f.csumOffset());

            for (GuestNet g : List.of(valid, bare)) {
                List<GuestNet.Rx> got = g.receive(pieces, WAIT);
                assertThat(got).as(f + " to " + (g == valid ? "GUEST_CSUM only" : "no offloads")).hasSize(pieces);
                int flags = g == valid ? OffloadFrames.DATA_VALID : 0;
                ByteArrayOutputStream payload = new ByteArrayOutputStream();
                for (GuestNet.Rx r : got) {
                    assertThat(List.of(r.flags(), r.gsoType())).containsExactly(flags, 0);
                    assertThat(r.frame().length).isLessThanOrEqualTo(f.hdrLen() + f.gsoSize());
                    assertThat(OffloadFrames.checksumsVerify(r.frame())).as("checksums of a segment").isTrue();
                    payload.write(r.frame(), f.hdrLen(), r.frame().length - f.hdrLen());
                }
                assertThat(payload.toByteArray()).as("the payload, in order").isEqualTo(Arrays.copyOfRange(frame, f.hdrLen(), frame.length));
            }
        }
        a.drainTx(WAIT);
        VirtioNetStats s = ((VirtioNetDevice) a.a.function()).stats();
        assertThat(s.txDropGso() + s.txDropBadCsum() + s.txDropTooBig()).isZero();
        assertThat(s.txFrames()).isEqualTo(4);
    }

    @Test
    void aGsoHeaderTheDriverWasNotGrantedOrThatDoesNotDescribeItsFrameIsACountedDrop() throws Exception {
        GuestNet noTso = guest(~VirtioNetFeatures.HOST_TSO4.mask()), peer = guest(-1L);
        OffloadFrames f = OffloadFrames.tcp(true, 4_000, 1448, 0x18, 0, false, 5);
        byte[] frame = from(noTso, f);
        send(noTso, f, frame, f.csumStart());                    // TSO4 without HOST_TSO4
        send(noTso, f, frame, f.csumStart() - 4);                // (and a wrong csum_start, for one that has it below)
        OffloadFrames v6 = OffloadFrames.tcp(false, 4_000, 1428, 0x18, 0, false, 6);
        send(noTso, v6, from(noTso, v6), v6.csumStart());         // TSO6 was granted: this one goes
        noTso.drainTx(WAIT);
        assertThat(((VirtioNetDevice) noTso.a.function()).stats().txDropGso()).isEqualTo(2);
        assertThat(peer.receive(1, WAIT)).extracting(GuestNet.Rx::gsoType).containsExactly(OffloadFrames.GSO_TCPV6);

        GuestNet tso = guest(-1L);
        byte[] f2 = from(tso, f);
        send(tso, f, f2, f.csumStart() - 4);
        f2[14 + 9] = 17;                                           // says TCP, carries UDP
        send(tso, f, f2, f.csumStart());
        tso.drainTx(WAIT);
        assertThat(((VirtioNetDevice) tso.a.function()).stats().txDropGso()).isEqualTo(2);
        assertThat(peer.receive(1, Duration.ofMillis(100))).isEmpty();
    }

    @Test
    void theOperatorCanLimitEachOffloadAwayAndTheDataPathFollowsWhatIsLeft() throws Exception {
        long denied = VirtioNetFeatures.GUEST_TSO4.mask() | VirtioNetFeatures.HOST_TSO6.mask();
        GuestNet limited = new GuestNet(container.addDevice(VirtioNetModel.TYPE, ~denied, Map.of()), 256);
        guests.add(limited);
        assertThat(limited.a.offeredFeatures() & denied).isZero();
        assertThat(limited.a.offeredFeatures() & (VirtioNetFeatures.GUEST_TSO6.mask() | VirtioNetFeatures.HOST_TSO4.mask())).isNotZero();
        limited.negotiate(-1L).start();
        limited.postRx(256);
        GuestNet peer = guest(-1L);
        OffloadFrames v4 = OffloadFrames.tcp(true, 6_000, 1448, 0x18, 0, false, 7), v6 = OffloadFrames.tcp(false, 6_000, 1428, 0x18, 0, false, 8);
        send(peer, v4, from(peer, v4), v4.csumStart());
        send(peer, v6, from(peer, v6), v6.csumStart());
        List<GuestNet.Rx> got = limited.receive(6, WAIT);     // TSO4 cut in 5 pieces for it, TSO6 whole
        assertThat(got).extracting(GuestNet.Rx::gsoType).containsExactly(0, 0, 0, 0, 0, OffloadFrames.GSO_TCPV6);
        send(limited, v4, from(limited, v4), v4.csumStart());  // HOST_TSO4 left: goes
        send(limited, v6, from(limited, v6), v6.csumStart());  // HOST_TSO6 limited away: a counted drop
        limited.drainTx(WAIT);
        assertThat(((VirtioNetDevice) limited.a.function()).stats().txDropGso()).isEqualTo(1);
        assertThat(peer.receive(1, WAIT)).extracting(GuestNet.Rx::gsoType).containsExactly(OffloadFrames.GSO_TCPV4);
    }

    @Test
    void aDriverWhoseRingsStartAtBaseZeroAsVhostUserStartsThemGetsSuperFramesWhole() throws Exception {
        GuestNet a = guest(-1L);
        GuestNet r = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(r);
        r.ringsFromBase = true;   // a new QEMU over vhost-user: SET_VRING_BASE 0 on every ring
        r.negotiate(-1L).start();
        r.postRx(256);
        OffloadFrames f = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 11);
        byte[] frame = from(a, f);
        send(a, f, frame, f.csumStart());
        GuestNet.Rx w = r.receive(1, WAIT).getFirst();
        assertThat(w.gsoType()).as("a driver that negotiated GUEST_TSO4 gets the super-frame whole").isEqualTo(OffloadFrames.GSO_TCPV4);
        assertThat(w.frame()).isEqualTo(frame);
    }

    @Test
    void aReceiverThatTurnsItsGuestOffloadsOffOnTheControlQueueGetsSegmentsFromThenOn() throws Exception {
        GuestNet a = guest(-1L), r = guest(-1L);
        OffloadFrames f = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 9);
        send(a, f, from(a, f), f.csumStart());
        assertThat(r.receive(1, WAIT)).extracting(GuestNet.Rx::gsoType).containsExactly(OffloadFrames.GSO_TCPV4);

        // GUEST_CSUM stays on, GUEST_TSO4/6 go off: from now on the switch cuts super-frames for it.
        assertThat(r.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET,
                VirtioNetControlQueueTest.le(VirtioNetFeatures.GUEST_CSUM.mask(), 8))).isEqualTo(VirtioNetControlQueueTest.OK);
        send(a, f, from(a, f), f.csumStart());
        int pieces = (f.frame().length - f.hdrLen() + f.gsoSize() - 1) / f.gsoSize();
        List<GuestNet.Rx> got = r.receive(pieces, WAIT);
        assertThat(got).hasSize(pieces);
        for (GuestNet.Rx x : got) {
            assertThat(List.of(x.flags(), x.gsoType())).containsExactly(OffloadFrames.DATA_VALID, 0);
            assertThat(OffloadFrames.checksumsVerify(x.frame())).isTrue();
        }

        // And back on: whole again.
        assertThat(r.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET,
                VirtioNetControlQueueTest.le(r.features & NetControl.GUEST_OFFLOADS, 8))).isEqualTo(VirtioNetControlQueueTest.OK);
        send(a, f, from(a, f), f.csumStart());
        assertThat(r.receive(1, WAIT)).extracting(GuestNet.Rx::gsoType).containsExactly(OffloadFrames.GSO_TCPV4);
    }

    /**
     * A later session that carries on from the rings where they are (a vhost-user front-end reconnecting with non-zero
     * ring bases, a restore) with fewer guest offloads than the last one: what the rx path hands its driver is what
     * this session negotiated, never what the last one had on.
     */
    @Test
    void aSessionThatCarriesOnWithFewerGuestOffloadsIsNeverHandedMoreThanItNegotiated() throws Exception {
        GuestNet a = guest(-1L), r = guest(-1L);
        OffloadFrames f = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 9);
        send(a, f, from(a, f), f.csumStart());
        assertThat(r.receive(1, WAIT)).extracting(GuestNet.Rx::gsoType).containsExactly(OffloadFrames.GSO_TCPV4);

        dev.jvbus.core.state.QueueState rx = r.a.stopQueue(VirtioNetModel.RX0).orElseThrow();
        dev.jvbus.core.state.QueueState tx = r.a.stopQueue(VirtioNetModel.TX0).orElseThrow();
        assertThat(VirtioNetDevice.startsOver(rx)).as("the rx ring carries on from where it was").isFalse();
        r.a.reset();
        r.a.writeStatus(dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE | dev.jvbus.core.bus.DeviceStatus.DRIVER);
        r.a.ackFeatures(r.features & ~GSO_RX);                      // GUEST_CSUM stays, no GUEST_TSO/USO this time
        r.a.addStatus(dev.jvbus.core.bus.DeviceStatus.FEATURES_OK);
        r.a.setMemory(r.memory);
        r.a.setQueue(new dev.jvbus.core.spi.QueueConfig(0, r.queueSize, rx.descAddr(), rx.availAddr(), rx.usedAddr()), rx);
        r.a.setQueue(new dev.jvbus.core.spi.QueueConfig(1, r.queueSize, tx.descAddr(), tx.availAddr(), tx.usedAddr()), tx);
        r.a.setDoorbells(0, r.rxKick, dev.jvbus.core.doorbell.Notifier.of(r.rxCall));
        r.a.setDoorbells(1, r.txKick, dev.jvbus.core.doorbell.Notifier.of(r.txCall));
        r.a.addStatus(dev.jvbus.core.bus.DeviceStatus.DRIVER_OK);
        VirtioNetDevice d = (VirtioNetDevice) r.a.function();
        assertThat(d.offloadsTaken()).as("rx offloads in force").isEqualTo(dev.jvbus.net.FrameOffload.TAKES_CSUM);

        send(a, f, from(a, f), f.csumStart());
        int pieces = (f.frame().length - f.hdrLen() + f.gsoSize() - 1) / f.gsoSize();
        List<GuestNet.Rx> got = r.receive(pieces, WAIT);
        assertThat(got).hasSize(pieces).allSatisfy(x -> assertThat(x.gsoType()).as("a segment, not a super-frame").isZero());
    }
}
