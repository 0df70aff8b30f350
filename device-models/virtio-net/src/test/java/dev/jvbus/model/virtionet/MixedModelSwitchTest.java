package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.model.venet.VenetFunction;
import dev.jvbus.model.venet.VenetGuest;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Two venet devices and two virtio-net devices on ONE switch, in one JVM, each driven through the
 * driver side of its own rings (venet: {@link VenetGuest} from venet's test-jar over IOQ rings;
 * virtio-net: {@link GuestNet} over split rings), all with mtu=9000: broadcast reaches the three
 * others, the switch learns all four MACs, unicast follows them across models and within a model,
 * frames of 60 to 9000 bytes arrive once and intact, a receiver without rx buffers drops exactly
 * the frames it had no room for, and every port counter matches what the test sent.
 */
class MixedModelSwitchTest {
    static final String NETWORK = "mixed";
    static final Map<String, String> JUMBO = Map.of("network", NETWORK, "mtu", "9000");
    static final int[] SIZES = {60, 61, 64, 128, 511, 1000, 1500, 1514, 1515, 4000, 8999, 9000};
    static final Duration WAIT = Duration.ofSeconds(20);

    /** One device as the test sees it, whatever its model. */
    interface Node {
        String label();
        String port();
        long mac();
        void send(byte[] frame) throws Exception;
        /** Everything that arrived since the last call (buffers are reposted). */
        List<byte[]> take() throws Exception;
    }

    static final class VenetNode implements Node {
        final String label;
        final VenetGuest g;
        final long mac;

        VenetNode(String label, VenetGuest g) throws Exception {
            this.label = label;
            this.g = g;
            this.mac = g.mac();
        }

        VenetFunction function() { return (VenetFunction) g.attachment().function(); }

        @Override public String label() { return label; }
        @Override public String port() { return function().name(); }
        @Override public long mac() { return mac; }
        @Override public void send(byte[] frame) throws Exception { g.sendBlocking(frame); }

        @Override public List<byte[]> take() throws Exception {
            g.poll();
            List<byte[]> out = new ArrayList<>(g.received);
            g.received.clear();
            return out;
        }
    }

    static final class VirtioNode implements Node {
        final String label;
        final GuestNet g;
        final long mac;
        int sent;

        VirtioNode(String label, GuestNet g) {
            this.label = label;
            this.g = g;
            this.mac = g.mac();
        }

        VirtioNetDevice function() { return (VirtioNetDevice) g.a.function(); }

        @Override public String label() { return label; }
        @Override public String port() { return ((NetPort) g.a.function()).name(); }
        @Override public long mac() { return mac; }

        @Override public void send(byte[] frame) throws Exception {
            g.send(frame, GuestNet.TxLayout.values()[sent++ % 3]);   // all three descriptor layouts in turn
        }

        @Override public List<byte[]> take() throws Exception {
            List<byte[]> out = new ArrayList<>();
            for (GuestNet.Rx r; (r = g.poll()) != null; ) {
                assertThat(r.flags()).as("%s: rx header flags", label).isZero();
                out.add(r.frame());
            }
            return out;
        }
    }

    /** What each port's counters must say, kept by the test as it sends. */
    static final class Expected {
        long rxFrames, rxBytes, txFrames, txBytes, noRxBuffer;
    }

    final List<AutoCloseable> drivers = new ArrayList<>();
    final Container container = Bus.withDiscoveredModels().createContainer("mixed-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    final L2Switch sw = Networks.of(container).getOrCreate(NETWORK);
    final Map<Node, Expected> expected = new LinkedHashMap<>();
    /** Per receiver: the frames it must get, in the order each sender sent them. */
    final Map<Node, List<byte[]>> due = new HashMap<>();
    int seq;

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable d : drivers.reversed()) d.close();
    }

    VenetNode venet(String label) throws Exception {
        VenetGuest g = new VenetGuest(VenetGuest.Options.flat().rxBuf(9014));
        drivers.add(g);
        g.bringUp(container.addDevice("venet", -1L, JUMBO));
        return add(new VenetNode(label, g));
    }

    VirtioNode virtio(String label) throws Exception {
        GuestNet g = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, JUMBO), 256);
        drivers.add(g);
        g.negotiate(-1L).start();
        g.postRx(256);
        return add(new VirtioNode(label, g));
    }

    <N extends Node> N add(N n) {
        expected.put(n, new Expected());
        due.put(n, new ArrayList<>());
        return n;
    }

    /**
     * Sends one frame from {@code from}; {@code reaches} are the ports the switch must deliver it to
     * ({@code room}: those whose rx ring has a buffer for it; the others must count a NO_RX_BUFFER drop).
     */
    byte[] send(Node from, long dst, int size, List<Node> reaches, List<Node> noRoom) throws Exception {
        byte[] f = frame(dst, from.mac(), size, ++seq);
        from.send(f);
        Expected e = expected.get(from);
        e.rxFrames++;
        e.rxBytes += size;
        for (Node to : reaches) {
            Expected x = expected.get(to);
            if (noRoom.contains(to)) {
                x.noRxBuffer++;
            } else {
                x.txFrames++;
                x.txBytes += size;
                due.get(to).add(f);
            }
        }
        return f;
    }

    PortStats stats(Node n) {
        return sw.stats().stream().filter(s -> s.port().equals(n.port())).findFirst().orElseThrow();
    }

    boolean countersAgree() {
        for (var en : expected.entrySet()) {
            PortStats s = stats(en.getKey());
            Expected e = en.getValue();
            if (s.rxFrames() != e.rxFrames || s.txFrames() != e.txFrames || s.dropped() != e.noRxBuffer) return false;
        }
        return true;
    }

    /** Waits until the switch has delivered (or dropped) everything sent, then checks every counter exactly. */
    void awaitAndCheckCounters(String phase) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!countersAgree() && System.nanoTime() < deadline) LockSupport.parkNanos(200_000);
        for (var en : expected.entrySet()) {
            Node n = en.getKey();
            Expected e = en.getValue();
            PortStats s = stats(n);
            assertThat(s.rxFrames()).as("%s: %s frames into the switch", phase, n.label()).isEqualTo(e.rxFrames);
            assertThat(s.rxBytes()).as("%s: %s bytes into the switch", phase, n.label()).isEqualTo(e.rxBytes);
            assertThat(s.txFrames()).as("%s: %s frames delivered", phase, n.label()).isEqualTo(e.txFrames);
            assertThat(s.txBytes()).as("%s: %s bytes delivered", phase, n.label()).isEqualTo(e.txBytes);
            assertThat(s.dropped(DropReason.NO_RX_BUFFER)).as("%s: %s NO_RX_BUFFER drops", phase, n.label()).isEqualTo(e.noRxBuffer);
            assertThat(s.dropped()).as("%s: %s drops of any reason", phase, n.label()).isEqualTo(e.noRxBuffer);
        }
    }

    /** Every frame due at {@code n} arrived, once, intact, in each sender's order, and nothing else. */
    void checkArrivals(String phase, Node n, List<byte[]> got) {
        List<byte[]> want = due.get(n);
        assertThat(got).as("%s: frames at %s", phase, n.label()).hasSameSizeAs(want);
        Map<Integer, byte[]> bySeq = new HashMap<>();
        for (byte[] f : want) bySeq.put(Frames.seq(f), f);
        Map<Long, Integer> lastSeqFrom = new HashMap<>();
        for (byte[] f : got) {
            int s = Frames.seq(f);
            byte[] w = bySeq.remove(s);
            assertThat(w).as("%s: frame seq %d at %s was due there, and only once", phase, s, n.label()).isNotNull();
            assertThat(f).as("%s: frame seq %d (%d bytes) at %s intact", phase, s, w.length, n.label()).isEqualTo(w);
            long src = MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 6, 12));
            Integer last = lastSeqFrom.put(src, s);
            if (last != null) assertThat(s).as("%s: frames from one sender stay in order at %s", phase, n.label()).isGreaterThan(last);
        }
        assertThat(bySeq).as("%s: frames missing at %s", phase, n.label()).isEmpty();
        want.clear();
    }

    void checkAllArrivals(String phase) throws Exception {
        for (Node n : expected.keySet()) checkArrivals(phase, n, arrivals(n::take, due.get(n).size()));
    }

    /**
     * The frames at a receiver once {@code want} have arrived (or {@link #WAIT} has passed), and any that arrived with
     * them: {@code from} hands over those that arrived since it was last called, and is called once more at the end,
     * so that a frame too many shows. Waited for because the switch counts a frame
     * delivered when it is in the receiver's ring, and a sender's batch publishes it only at the batch's end: the
     * counters can agree a moment before the driver sees the frame.
     */
    static List<byte[]> arrivals(Callable<List<byte[]>> from, int want) throws Exception {
        List<byte[]> got = new ArrayList<>(from.call());
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (got.size() < want && System.nanoTime() < deadline) {
            LockSupport.parkNanos(200_000);
            got.addAll(from.call());
        }
        got.addAll(from.call());
        return got;
    }

    @Test
    void twoVenetAndTwoVirtioNetDevicesShareOneSwitchAcrossModels() throws Exception {
        VenetNode v1 = venet("venet-1"), v2 = venet("venet-2");
        VirtioNode n1 = virtio("virtio-net-1"), n2 = virtio("virtio-net-2");
        List<Node> all = List.of(v1, v2, n1, n2);
        assertThat(all.stream().map(Node::mac).distinct()).hasSize(4);
        assertThat(all.stream().map(Node::port).distinct()).hasSize(4);
        assertThat(VirtioNetFeatures.MTU.in(n1.g.features)).as("virtio-net negotiated MTU").isTrue();
        assertThat(GuestNet.le16(n1.g.a.readConfig(VirtioNetModel.CONFIG_MTU, 2))).isEqualTo(9000);
        assertThat(v1.function().settings().mtu()).isEqualTo(9000);
        Map<String, String> assigned = new HashMap<>();
        for (Node n : all) assigned.put(MacAddress.toString(n.mac()), n.port());
        assertThat(sw.macTable()).as("each device's MAC at its port from hotplug on, before anyone spoke").isEqualTo(assigned);

        // 1. Broadcast: each device's broadcasts (small, full-size, jumbo) reach the three others and
        //    teach the switch where the sender is.
        for (Node from : all) {
            List<Node> others = all.stream().filter(n -> n != from).toList();
            for (int size : new int[] {60, 1514, 9000}) send(from, MacAddress.BROADCAST, size, others, List.of());
            awaitAndCheckCounters("broadcast from " + from.label());
            Map<String, String> table = sw.macTable();
            assertThat(table).as("learned after %s spoke", from.label()).containsEntry(MacAddress.toString(from.mac()), from.port());
        }
        checkAllArrivals("broadcast");
        Map<String, String> learned = new HashMap<>();
        for (Node n : all) learned.put(MacAddress.toString(n.mac()), n.port());
        assertThat(sw.macTable()).as("the switch's mac table: each MAC on its own port").isEqualTo(learned);

        // 2. Unicast between every ordered pair: venet->virtio-net, virtio-net->venet, venet->venet,
        //    virtio-net->virtio-net; every size from 60 to 9000 bytes. Only the destination gets each frame.
        for (Node from : all) {
            for (Node to : all) {
                if (to == from) continue;
                for (int size : SIZES) send(from, to.mac(), size, List.of(to), List.of());
            }
        }
        awaitAndCheckCounters("unicast");
        checkAllArrivals("unicast");

        // 3. Receivers whose rx ring runs dry: venet-2 (64 IOQ buffers) gets 74 frames from virtio-net-1,
        //    virtio-net-2 (256 mergeable buffers) gets 266 from venet-1; neither reposts meanwhile.
        int venetRoom = VenetGuest.COUNT, virtioRoom = 256, extra = 10;
        List<byte[]> toV2 = new ArrayList<>(), toN2 = new ArrayList<>();
        for (int i = 0; i < venetRoom + extra; i++) {
            toV2.add(send(n1, v2.mac(), 200, List.of(v2), i < venetRoom ? List.of() : List.of(v2)));
        }
        for (int i = 0; i < virtioRoom + extra; i++) {
            toN2.add(send(v1, n2.mac(), 60, List.of(n2), i < virtioRoom ? List.of() : List.of(n2)));
        }
        awaitAndCheckCounters("rx ring empty");
        List<byte[]> atV2 = arrivals(() -> {
            List<byte[]> got = new ArrayList<>();
            v2.g.drainWithoutRepost(got);
            return got;
        }, venetRoom);
        checkArrivals("rx ring empty", v2, atV2);
        assertThat(atV2).as("venet-2 got the first %d, in order", venetRoom).containsExactlyElementsOf(toV2.subList(0, venetRoom));
        List<byte[]> atN2 = arrivals(n2::take, virtioRoom);
        assertThat(atN2).as("virtio-net-2 got the first %d, in order", virtioRoom).containsExactlyElementsOf(toN2.subList(0, virtioRoom));
        checkArrivals("rx ring empty", n2, atN2);
        assertThat(v2.function().rxDropsNoBuffer).as("venet-2's own count").isEqualTo(extra);
        assertThat(n2.function().stats().rxDropped(DropReason.NO_RX_BUFFER)).as("virtio-net-2's own count").isEqualTo(extra);

        // Buffers back: traffic flows again (jumbo across models once more), no further drop.
        v2.g.repostAll();
        for (int i = 0; i < 5; i++) {
            send(n1, v2.mac(), 9000 - i, List.of(v2), List.of());
            send(v1, n2.mac(), 9000 - i, List.of(n2), List.of());
        }
        awaitAndCheckCounters("after repost");
        checkAllArrivals("after repost");

        // Each device's own counters agree with its switch port.
        for (VenetNode v : List.of(v1, v2)) {
            VenetFunction f = v.function();
            PortStats s = stats(v);
            assertThat(f.txFrames).as("%s tx", v.label()).isEqualTo(s.rxFrames());
            assertThat(f.txBytes).isEqualTo(s.rxBytes());
            assertThat(f.rxFrames).as("%s rx", v.label()).isEqualTo(s.txFrames());
            assertThat(f.rxBytes).isEqualTo(s.txBytes());
            assertThat(f.txDropsRunt + f.txDropsOversize + f.rxDropsTooBig + f.rxDropsPortDown).isZero();
        }
        for (VirtioNode n : List.of(n1, n2)) {
            n.g.drainTx(WAIT);
            VirtioNetStats d = n.function().stats();
            PortStats s = stats(n);
            assertThat(d.txFrames()).as("%s tx", n.label()).isEqualTo(s.rxFrames());
            assertThat(d.rxFrames()).as("%s rx", n.label()).isEqualTo(s.txFrames());
            assertThat(d.rxBytes()).isEqualTo(s.txBytes());
            assertThat(d.txDropTooBig() + d.txDropGso() + d.txDropBadCsum()).isZero();
            assertThat(n.g.txUsedLenNonZero).isZero();
        }
        System.out.printf("mixed switch (2 venet + 2 virtio-net, mtu 9000): %s%n",
                all.stream().map(n -> n.label() + " " + stats(n)).toList());
    }

    @Test
    void aVirtioNetSuperFrameReachesVenetAsPlainSegmentsWithTheirChecksumsComplete() throws Exception {
        VenetNode v = venet("venet");
        VirtioNode t = virtio("virtio");
        dev.jvbus.core.testing.OffloadFrames f = dev.jvbus.core.testing.OffloadFrames.tcp(true, 10_000, 1448, 0x19, 3, false, 9);
        byte[] frame = f.frame().clone();
        System.arraycopy(MacAddress.toBytes(v.mac()), 0, frame, 0, 6);
        System.arraycopy(MacAddress.toBytes(t.mac()), 0, frame, 6, 6);
        t.g.send(frame, GuestNet.TxLayout.SPLIT, f.flags(), f.gsoType(), f.hdrLen(), f.gsoSize(), f.csumStart(), f.csumOffset());
        List<byte[]> got = arrivals(v::take, 7);
        assertThat(got).as("venet takes no offload: the switch cut the super-frame for it").hasSize(7);
        java.io.ByteArrayOutputStream payload = new java.io.ByteArrayOutputStream();
        for (byte[] b : got) {
            assertThat(dev.jvbus.core.testing.OffloadFrames.checksumsVerify(b)).as("checksums of a segment venet got").isTrue();
            payload.write(b, f.hdrLen(), b.length - f.hdrLen());
        }
        assertThat(payload.toByteArray()).isEqualTo(java.util.Arrays.copyOfRange(frame, f.hdrLen(), frame.length));
        assertThat(sw.ports().stream().filter(p -> p.name().equals(v.port())).findFirst().orElseThrow().framesSegmented()).isEqualTo(1);
    }
}
