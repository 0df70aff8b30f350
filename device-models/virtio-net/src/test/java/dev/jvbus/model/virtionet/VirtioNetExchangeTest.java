package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * virtio-net devices on one switch, each driven by a {@link GuestNet} over its own memfd with real
 * eventfds: every frame arrives once and intact, learning steers unicast, drops are counted exactly.
 */
class VirtioNetExchangeTest {
    static final AtomicInteger CONTAINERS = new AtomicInteger();
    static final Duration WAIT = Duration.ofSeconds(10);
    static final int[] SIZES = {60, 61, 64, 100, 128, 255, 256, 511, 512, 1000, 1023, 1024, 1200, 1500, 1513, 1514};

    final List<GuestNet> guests = new ArrayList<>();
    final Container container = newContainer();

    static Container newContainer() {
        return Bus.withDiscoveredModels().createContainer("vn" + CONTAINERS.incrementAndGet() + "-" + ProcessHandle.current().pid());
    }

    GuestNet guest(Container c, long limit, Map<String, String> params, long want) throws Exception {
        GuestNet g = new GuestNet(c.addDevice(VirtioNetModel.TYPE, limit, params), 256);
        guests.add(g);
        return g.negotiate(want).start();
    }

    GuestNet guest(long want) throws Exception {
        return guest(container, -1L, Map.of(), want);
    }

    static PortStats stats(Container c, GuestNet g) {
        return Networks.of(c).devicePort("default", g.a.devid().unsigned()).orElseThrow().stats();
    }

    static VirtioNetStats deviceStats(GuestNet g) {
        return ((VirtioNetDevice) g.a.function()).stats();
    }

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    @ParameterizedTest(name = "eventIdx={0} mergeable={1} legacy={2}")
    @CsvSource({"true,true,false", "true,false,false", "false,true,false", "false,false,false", "true,false,true", "false,false,true"})
    void framesOfEverySizeArriveOnceAndIntactBothWays(boolean eventIdx, boolean mergeable, boolean legacy) throws Exception {
        long want = -1L;
        if (!eventIdx) want &= ~VirtioFeatures.EVENT_IDX.mask();
        if (!mergeable) want &= ~VirtioNetFeatures.MRG_RXBUF.mask();
        if (legacy) want &= ~VirtioFeatures.VERSION_1.mask();   // a legacy driver: the 10-byte header, no num_buffers
        GuestNet a = guest(want), b = guest(want);
        assertThat(a.hdr).as("the header length the features give").isEqualTo(legacy ? 10 : 12);
        a.rxSplitHeader = !mergeable;      // one ring posts [header][rest], like Linux's big-packet chains
        b.rxSplitHeader = !mergeable;      // the other splits the header itself, [5][7 + rest]: the device cannot write it
        b.rxHeaderPiece = 5;               // in place (two stores into the first descriptor) and scatters it instead
        a.postRx(256);
        b.postRx(256);
        assertThat(VirtioFeatures.EVENT_IDX.in(a.features)).isEqualTo(eventIdx);
        long ma = a.mac(), mb = b.mac();

        // Broadcast first: both MACs are learned, later frames are unicast.
        a.send(frame(MacAddress.BROADCAST, ma, 60, 0), GuestNet.TxLayout.ONE);
        b.send(frame(MacAddress.BROADCAST, mb, 60, 0), GuestNet.TxLayout.ONE);
        GuestNet.TxLayout[] layouts = GuestNet.TxLayout.values();
        int rounds = 20, n = 0;
        List<GuestNet.Rx> atB = new ArrayList<>(), atA = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {       // a round fits the 256-buffer rx rings, so nothing is dropped
            for (int size : SIZES) {
                n++;
                a.send(frame(mb, ma, size, n), layouts[n % 3]);
                b.send(frame(ma, mb, size, n), layouts[(n + 1) % 3]);
            }
            atB.addAll(b.receive(n + 1 - atB.size(), WAIT));
            atA.addAll(a.receive(n + 1 - atA.size(), WAIT));
        }
        assertThat(atB.size()).isEqualTo(n + 1);
        assertThat(atA.size()).isEqualTo(n + 1);
        for (List<GuestNet.Rx> got : List.of(atA, atB)) {
            for (int i = 0; i <= n; i++) {
                byte[] f = got.get(i).frame();
                assertThat(Frames.seq(f)).as("in order, once").isEqualTo(i);
                assertThat(Frames.intact(f)).as("frame %d intact", i).isTrue();
                assertThat(f.length).isEqualTo(i == 0 ? 60 : SIZES[(i - 1) % SIZES.length]);
                assertThat(got.get(i).flags()).isZero();
                if (!mergeable) assertThat(got.get(i).numBuffers()).isEqualTo(1);
            }
        }
        a.drainTx(WAIT);
        b.drainTx(WAIT);
        assertThat(a.txUsedLenNonZero).isZero();
        long bytes = 60;
        for (int r = 0; r < rounds; r++) for (int size : SIZES) bytes += size;
        for (GuestNet g : List.of(a, b)) {
            PortStats p = stats(container, g);
            assertThat(p.rxFrames()).isEqualTo(n + 1);
            assertThat(p.txFrames()).isEqualTo(n + 1);
            assertThat(p.txBytes()).isEqualTo(bytes);
            assertThat(p.dropped()).isZero();
            VirtioNetStats d = deviceStats(g);
            assertThat(d.txFrames()).isEqualTo(n + 1);
            assertThat(d.rxFrames()).isEqualTo(n + 1);
            assertThat(d.rxBytes()).isEqualTo(bytes);
            assertThat(d.txDropTooBig() + d.txDropGso() + d.txDropBadCsum()).isZero();
        }
    }

    @ParameterizedTest(name = "mergeable={0}")
    @CsvSource({"true", "false"})
    void jumboFramesPassWithMtu9000AndAreTooBigForADriverWithoutMtu(boolean mergeable) throws Exception {
        long want = mergeable ? -1L : ~VirtioNetFeatures.MRG_RXBUF.mask();
        Map<String, String> jumbo = Map.of("mtu", "9000");
        GuestNet a = guest(container, -1L, jumbo, want), b = guest(container, -1L, jumbo, want);
        GuestNet small = guest(container, ~VirtioNetFeatures.MTU.mask(), jumbo, want);   // operator hid MTU: 1500 for it
        for (GuestNet g : List.of(a, b, small)) g.postRx(256);
        assertThat(GuestNet.le16(a.a.readConfig(VirtioNetModel.CONFIG_MTU, 2))).isEqualTo(9000);

        int n = 40;
        for (int i = 0; i < n; i++) a.send(frame(MacAddress.BROADCAST, a.mac(), 9014 - i, i), GuestNet.TxLayout.values()[i % 3]);
        List<GuestNet.Rx> got = b.receive(n, WAIT);
        assertThat(got).hasSize(n);
        for (int i = 0; i < n; i++) {
            assertThat(got.get(i).frame()).hasSize(9014 - i);
            assertThat(Frames.intact(got.get(i).frame())).isTrue();
            if (mergeable) assertThat(got.get(i).numBuffers()).isEqualTo((12 + 9014 - i + 1535) / 1536);
        }
        a.drainTx(WAIT);
        assertThat(small.receive(1, Duration.ofMillis(50))).isEmpty();
        assertThat(stats(container, small).dropped(DropReason.TOO_BIG)).isEqualTo(n);
        assertThat(stats(container, b).dropped()).isZero();

        // The device without MTU may not send jumbo frames either: dropped at its tx, counted there.
        small.send(frame(MacAddress.BROADCAST, small.mac(), 1600, 1), GuestNet.TxLayout.ONE);
        small.send(frame(MacAddress.BROADCAST, small.mac(), 1514, 2), GuestNet.TxLayout.ONE);
        assertThat(Frames.seq(b.receive(1, WAIT).getFirst().frame())).isEqualTo(2);
        small.drainTx(WAIT);
        assertThat(deviceStats(small).txDropTooBig()).isEqualTo(1);
    }

    @Test
    void framesForAGuestWithoutRxBuffersAreDroppedAndCountedExactly() throws Exception {
        GuestNet a = guest(-1L), b = guest(-1L);
        a.postRx(256);
        b.send(frame(a.mac(), b.mac(), 100, 0), GuestNet.TxLayout.ONE);   // a learns... the switch learns b
        assertThat(a.receive(1, WAIT)).hasSize(1);

        b.postRx(5);
        for (int i = 1; i <= 20; i++) a.send(frame(b.mac(), a.mac(), 200, i), GuestNet.TxLayout.ONE);
        a.drainTx(WAIT);                                   // every frame went through the switch by now
        PortStats pb = stats(container, b);
        assertThat(pb.txFrames()).isEqualTo(5);
        assertThat(pb.dropped(DropReason.NO_RX_BUFFER)).isEqualTo(15);
        assertThat(pb.dropped()).isEqualTo(15);
        assertThat(deviceStats(b).rxDropped(DropReason.NO_RX_BUFFER)).isEqualTo(15);
        assertThat(b.receive(5, WAIT)).extracting(r -> Frames.seq(r.frame())).containsExactly(1, 2, 3, 4, 5);

        for (int i = 21; i <= 30; i++) a.send(frame(b.mac(), a.mac(), 200, i), GuestNet.TxLayout.ONE);
        assertThat(b.receive(10, WAIT)).extracting(r -> Frames.seq(r.frame())).containsExactly(21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
        assertThat(stats(container, b).dropped()).isEqualTo(15);
    }

    @Test
    void macLearningSteersUnicastAndUnknownDestinationsFlood() throws Exception {
        GuestNet a = guest(-1L), b = guest(-1L), c = guest(-1L);
        for (GuestNet g : List.of(a, b, c)) g.postRx(256);
        a.send(frame(MacAddress.BROADCAST, a.mac(), 60, 1), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).hasSize(1);
        assertThat(c.receive(1, WAIT)).hasSize(1);

        b.send(frame(a.mac(), b.mac(), 60, 2), GuestNet.TxLayout.ONE);       // a is known: only a
        assertThat(Frames.seq(a.receive(1, WAIT).getFirst().frame())).isEqualTo(2);
        a.send(frame(b.mac(), a.mac(), 60, 3), GuestNet.TxLayout.ONE);       // b learned from its frame
        assertThat(Frames.seq(b.receive(1, WAIT).getFirst().frame())).isEqualTo(3);
        long unknown = MacAddress.parse("02:99:99:99:99:99");
        a.send(frame(unknown, a.mac(), 60, 4), GuestNet.TxLayout.ONE);       // unknown: flooded
        assertThat(Frames.seq(b.receive(1, WAIT).getFirst().frame())).isEqualTo(4);
        assertThat(Frames.seq(c.receive(1, WAIT).getFirst().frame())).isEqualTo(4);
        a.drainTx(WAIT);
        b.drainTx(WAIT);
        assertThat(c.receive(1, Duration.ofMillis(50))).isEmpty();
        assertThat(stats(container, c).txFrames()).isEqualTo(2);             // the broadcast and the flood, nothing else
        assertThat(Networks.of(container).require("default").macTable())
                .containsKeys(MacAddress.toString(a.mac()), MacAddress.toString(b.mac()));
    }

    @Test
    void streamOfSmallFramesPrintsItsRate() throws Exception {
        GuestNet a = guest(-1L), b = guest(-1L);
        b.postRx(256);
        long ma = a.mac(), mb = b.mac();
        b.send(frame(ma, mb, 60, 0), GuestNet.TxLayout.ONE);                 // learn b; a has no rx buffers: counted drop
        b.drainTx(WAIT);
        int n = 100_000;
        byte[][] f = new byte[64][];
        for (int i = 0; i < f.length; i++) f[i] = frame(mb, ma, 64, i);
        List<Integer> order = new ArrayList<>();
        java.util.concurrent.atomic.AtomicLong received = new java.util.concurrent.atomic.AtomicLong();
        Thread rx = Thread.ofPlatform().name("guest-b-rx").start(() -> {
            try {
                int got = 0;
                while (got < n) {
                    List<GuestNet.Rx> r = b.receive(Math.min(64, n - got), Duration.ofSeconds(20));
                    if (r.isEmpty()) break;
                    for (GuestNet.Rx x : r) if (Frames.seq(x.frame()) != got++ % 64) order.add(got);
                    received.set(got);
                }
                order.add(-got);
            } catch (Exception e) {
                order.add(Integer.MIN_VALUE);
            }
        });
        long t0 = System.nanoTime();
        // Paced by b's ring: a sends only while b has room, so no frame is dropped and all must arrive.
        for (int i = 0; i < n && rx.isAlive(); i++) {
            while (received.get() + 200 < i && rx.isAlive()) Thread.onSpinWait();
            a.send(f[i % 64], GuestNet.TxLayout.ONE);
        }
        rx.join();   // it ends by itself: with all n frames, or after 20 s without one (30 s in all was too short under load)
        double secs = (System.nanoTime() - t0) / 1e9;
        System.out.printf("virtio-net 64-byte frames guest A -> switch -> guest B: %d frames in %.2f s = %.0f frames/s%n", n, secs, n / secs);
        assertThat(order).containsExactly(-n);
        assertThat(stats(container, b).dropped()).isZero();
    }
}
