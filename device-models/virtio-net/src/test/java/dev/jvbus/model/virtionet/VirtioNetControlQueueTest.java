package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.RxFilter;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The control virtqueue, driven as Linux's virtio_net driver drives it (header, data and ack in three
 * descriptors, one command at a time), against real devices on a real switch: each command's effect is
 * checked where it shows, in what the ports receive, in the switch's MAC table and spoof check, in the
 * config space, and across a save and restore.
 */
class VirtioNetControlQueueTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    static final int OK = 0, ERR = 1;
    static final long MCAST = MacAddress.parse("01:00:5e:00:00:01"), OTHER_MCAST = MacAddress.parse("01:00:5e:00:00:02");
    final List<GuestNet> guests = new ArrayList<>();
    int seq;

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    GuestNet guest(Container c, long limit, Map<String, String> params) throws Exception {
        GuestNet g = new GuestNet(c.addDevice(VirtioNetModel.TYPE, limit, params), 256);
        guests.add(g);
        g.negotiate(-1L).start().postRx(256);
        return g;
    }

    GuestNet guest(Container c) throws Exception {
        return guest(c, -1L, Map.of());
    }

    static byte[] on(boolean on) {
        return new byte[] {(byte) (on ? 1 : 0)};
    }

    static byte[] le(long v, int bytes) {
        ByteBuffer b = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < bytes; i++) b.put((byte) (v >>> (8 * i)));
        return b.array();
    }

    /** MAC_TABLE_SET's data: le32 count and the addresses, for the unicast then the multicast table. */
    static byte[] macTables(long[] unicast, long[] multicast) {
        ByteBuffer b = ByteBuffer.allocate(8 + 6 * (unicast.length + multicast.length)).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(unicast.length);
        for (long m : unicast) b.put(MacAddress.toBytes(m));
        b.putInt(multicast.length);
        for (long m : multicast) b.put(MacAddress.toBytes(m));
        return b.array();
    }

    /**
     * {@code from} sends a frame to each of {@code dsts}, then a broadcast marker; what {@code to} received up
     * to the marker (the switch delivers one sender's frames in order) is returned as destination MACs.
     */
    List<Long> whatArrives(GuestNet from, GuestNet to, long... dsts) throws Exception {
        int first = seq + 1;   // frames of earlier calls still queued at the receiver are not this call's
        for (long d : dsts) from.send(frame(d, from.mac(), 60, ++seq), GuestNet.TxLayout.ONE);
        int marker = ++seq;
        from.send(frame(MacAddress.BROADCAST, from.mac(), 60, marker), GuestNet.TxLayout.ONE);
        List<Long> got = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            for (GuestNet.Rx r : to.receive(1, Duration.ofMillis(200))) {
                if (Frames.seq(r.frame()) < first || MacAddress.fromBytes(java.util.Arrays.copyOfRange(r.frame(), 6, 12)) != from.mac()) continue;
                if (Frames.seq(r.frame()) == marker) return got;
                got.add(MacAddress.fromBytes(java.util.Arrays.copyOf(r.frame(), 6)));
            }
        }
        throw new AssertionError("the marker never arrived; got " + got);
    }

    static SwitchPort port(Container c, GuestNet g) {
        return Networks.of(c).require("default").ports().stream()
                .filter(p -> p.backend() == g.a.function()).findFirst().orElseThrow();
    }

    static VirtioNetDevice device(GuestNet g) {
        return (VirtioNetDevice) g.a.function();
    }

    @Test
    void promiscuousOnGivesThePortUnicastForOtherMacsAndOffTakesItAway() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c), b = guest(c), d = guest(c);
        assertThat(whatArrives(b, a, d.mac())).as("by default a learning switch sends d's unicast to d alone").isEmpty();

        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(true))).isEqualTo(OK);
        assertThat(whatArrives(b, a, d.mac(), a.mac())).as("promiscuous: d's unicast too").containsExactly(d.mac(), a.mac());
        assertThat(whatArrives(b, d, d.mac())).as("d still gets its own").containsExactly(d.mac());

        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(false))).isEqualTo(OK);
        long unknown = MacAddress.parse("02:00:00:00:99:99");
        assertThat(whatArrives(b, a, d.mac(), unknown, a.mac())).as("filtering: its own address only, not even flooded unknown unicast")
                .containsExactly(a.mac());
        assertThat(VirtioNetExchangeTest.stats(c, a).dropped()).isZero();
        assertThat(device(a).controlStats()).isEqualTo(new VirtioNetDevice.ControlStats(2, 0));
    }

    @Test
    void allMulticastAndTheMulticastTableDecideWhichMulticastFramesArrive() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c), b = guest(c);
        assertThat(whatArrives(b, a, MCAST)).as("by default every multicast frame").containsExactly(MCAST);

        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(false))).isEqualTo(OK);
        assertThat(whatArrives(b, a, MCAST)).as("filtering, no table, no all-multicast").isEmpty();
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_ALLMULTI, on(true))).isEqualTo(OK);
        assertThat(whatArrives(b, a, MCAST, OTHER_MCAST)).containsExactly(MCAST, OTHER_MCAST);
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_ALLMULTI, on(false))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_TABLE_SET, macTables(new long[0], new long[] {MCAST}))).isEqualTo(OK);
        assertThat(whatArrives(b, a, MCAST, OTHER_MCAST)).as("the table's multicast address only").containsExactly(MCAST);
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_NOBCAST, on(true))).isEqualTo(OK);
        assertThat(port(c, a).rxFilter().accepts(MacAddress.BROADCAST)).isFalse();
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_NOBCAST, on(false))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_TABLE_SET, macTables(new long[] {MCAST}, new long[0])))
                .as("a multicast address in the unicast table").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_TABLE_SET, new byte[] {1, 0, 0, 0, 0}))
                .as("a table longer than its data").isEqualTo(ERR);
        assertThat(whatArrives(b, a, MCAST, OTHER_MCAST)).as("refused tables changed nothing").containsExactly(MCAST);
    }

    @Test
    void macAddrSetMovesTheMacTableEntryAndTheSpoofCheckAndTheConfigSpace() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c), b = guest(c);
        long old = a.mac(), mac = MacAddress.parse("02:aa:bb:cc:dd:01");
        var sw = Networks.of(c).require("default");

        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(mac))).isEqualTo(OK);
        assertThat(a.mac()).as("the config space's mac").isEqualTo(mac);
        assertThat(device(a).currentMac()).isEqualTo(mac);
        assertThat(sw.macTable()).containsEntry(MacAddress.toString(mac), port(c, a).name()).doesNotContainKey(MacAddress.toString(old));
        assertThat(port(c, a).assignedSource()).hasValue(mac);

        a.send(frame(b.mac(), mac, 60, 1), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(1));
        a.send(frame(b.mac(), old, 60, 2), GuestNet.TxLayout.ONE);
        a.drainTx(WAIT);
        assertThat(VirtioNetExchangeTest.stats(c, a).dropped(DropReason.SPOOFED_SOURCE)).as("its old address is another's now").isEqualTo(1);
        b.send(frame(mac, b.mac(), 60, 3), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(3));

        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(b.mac()))).as("b's address").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(MCAST))).as("a group address").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, new byte[5])).as("5 bytes").isEqualTo(ERR);
        assertThat(a.mac()).isEqualTo(mac);
        assertThat(sw.macTable()).containsEntry(MacAddress.toString(b.mac()), port(c, b).name());
    }

    @Test
    void guestOffloadsAreSetWithinTheNegotiatedOnesAndRefusedBeyondThem() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        long csum = VirtioNetFeatures.GUEST_CSUM.mask(), tso4 = VirtioNetFeatures.GUEST_TSO4.mask();
        GuestNet a = guest(c, ~tso4, Map.of());   // GUEST_TSO4 kept out, whatever this model offers
        assertThat(a.features & csum).as("GUEST_CSUM negotiated").isNotZero();
        assertThat(device(a).activeGuestOffloads()).as("every negotiated guest offload, at first")
                .isEqualTo(a.features & NetControl.GUEST_OFFLOADS);
        assertThat(a.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(0, 8))).isEqualTo(OK);
        assertThat(device(a).activeGuestOffloads()).isZero();
        assertThat(a.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(csum | tso4, 8)))
                .as("GUEST_TSO4 was not negotiated").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(csum, 4))).as("4 bytes").isEqualTo(ERR);
        assertThat(device(a).activeGuestOffloads()).as("refused commands changed nothing").isZero();
        assertThat(a.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(csum, 8))).isEqualTo(OK);
        assertThat(device(a).activeGuestOffloads()).isEqualTo(csum);

        GuestNet limited = guest(c, ~VirtioNetFeatures.CTRL_GUEST_OFFLOADS.mask(), Map.of());
        assertThat(limited.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(0, 8)))
                .as("the operator limited CTRL_GUEST_OFFLOADS away").isEqualTo(ERR);
    }

    @Test
    void eachCommandIsLimitableByTheOperatorAndThenRefused() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        var catalog = VirtioNetFeatures.OFFERED;
        long limit = ~catalog.maskOf(List.of("VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_CTRL_MAC_ADDR"));
        GuestNet a = guest(c, limit, Map.of());
        assertThat(a.features & VirtioNetFeatures.CTRL_VQ.mask()).isNotZero();
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(true))).isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(MacAddress.parse("02:00:00:00:00:42"))))
                .isEqualTo(ERR);
        assertThat(port(c, a).rxFilter()).isEqualTo(RxFilter.ACCEPT_ALL);
    }

    @Test
    void malformedCommandsAreAnsweredErrAndTheDeviceKeepsWorking() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c), b = guest(c);
        assertThat(a.command(9, 0, new byte[0])).as("unknown class").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_RX, 77, on(true))).as("unknown command").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, new byte[0])).as("no data").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, new byte[2])).as("two bytes").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_VLAN, 0, le(5, 2))).as("CTRL_VLAN is not offered").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, new byte[ControlQueue.MAX_DATA + 1])).as("longer than any command")
                .isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, le(VirtioNetParams.DEFAULT_PAIRS + 1, 2)))
                .as("more pairs than the device has").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, le(0, 2))).as("0 pairs").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_RSS_CONFIG, new byte[8])).as("no RSS").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, le(1, 2))).as("one pair").isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).as("no announce pending").isEqualTo(ERR);

        // The ack byte may sit in a descriptor of its own with room to spare, the data split over several.
        var seg = a.mem.segment();
        long at = GuestNet.CTRL_BUFFERS + 0x100;
        seg.set(ValueLayout.JAVA_BYTE, at, (byte) NetControl.CLASS_RX);
        seg.set(ValueLayout.JAVA_BYTE, at + 1, (byte) NetControl.RX_ALLMULTI);
        seg.set(ValueLayout.JAVA_BYTE, at + 2, (byte) 1);
        BufferList split = new BufferList(4).readable(GuestNet.G + at, 1).readable(GuestNet.G + at + 1, 2).writable(GuestNet.G + at + 32, 16);
        assertThat(a.commandRaw(split, at + 32)).isEqualTo(OK);

        assertThat(a.device.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
        assertThat(device(a).controlStats()).isEqualTo(new VirtioNetDevice.ControlStats(2, 10));
        a.send(frame(b.mac(), a.mac(), 100, 1), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.intact(r.frame())).isTrue());
        b.send(frame(a.mac(), b.mac(), 100, 2), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.intact(r.frame())).isTrue());
    }

    /**
     * Guest-chosen bytes: random classes, commands and data (mostly near the real ones, so they reach each
     * command's checks) are each answered OK or ERR, never left unanswered, and the device keeps working.
     */
    @Test
    void randomCommandsAreEachAnsweredAndNeverBreakTheDevice() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c), b = guest(c);
        java.util.Random random = new java.util.Random(18);
        int ok = 0, err = 0;
        for (int i = 0; i < 2000; i++) {
            int cls = random.nextInt(8), cmd = random.nextInt(4) == 0 ? random.nextInt(256) : random.nextInt(6);
            int len = switch (random.nextInt(4)) {
                case 0 -> random.nextInt(3);
                case 1 -> 6;
                case 2 -> 8;
                default -> random.nextInt(40);
            };
            byte[] data = new byte[len];
            random.nextBytes(data);
            if (cls == NetControl.CLASS_MAC && cmd == NetControl.MAC_ADDR_SET && len == 6) data[0] &= (byte) 0xfe;   // often unicast
            int ack = a.command(cls, cmd, data);
            assertThat(ack).as("command %d/%d with %d bytes", cls, cmd, len).isIn(OK, ERR);
            if (ack == OK) ok++;
            else err++;
        }
        assertThat(ok).as("some were valid").isPositive();
        assertThat(err).isPositive();
        assertThat(device(a).controlStats()).isEqualTo(new VirtioNetDevice.ControlStats(ok, err));
        assertThat(a.device.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(true))).isEqualTo(OK);   // whatever it filtered: everything
        a.send(frame(b.mac(), a.mac(), 100, 1), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.intact(r.frame())).isTrue());
        b.send(frame(a.mac(), b.mac(), 100, 2), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.intact(r.frame())).isTrue());
    }

    @Test
    void aCommandWithoutRoomForItsAckFaultsThatDeviceOnly() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet bad = guest(c), b = guest(c), d = guest(c);
        long at = GuestNet.CTRL_BUFFERS;
        bad.mem.segment().set(ValueLayout.JAVA_BYTE, at, (byte) NetControl.CLASS_RX);
        assertThat(bad.ctrlq.add(new BufferList(2).readable(GuestNet.G + at, 3))).isNotNegative();
        bad.ctrlq.kickIfNeeded();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!bad.device.status().has(DeviceStatus.NEEDS_RESET) && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(bad.device.needsResetReason()).hasValueSatisfying(r -> assertThat(r).contains("queue " + bad.ctrlIndex).contains("ack"));
        b.send(frame(d.mac(), b.mac(), 80, 5), GuestNet.TxLayout.ONE);
        assertThat(d.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(5));
    }

    @Test
    void afterARestoreTheDeviceAsksForAnAnnounceAndTheAckClearsIt() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c1);
        assertThat(status(a) & NetControl.STATUS_ANNOUNCE).as("nothing to announce on a fresh start").isZero();
        assertThat(a.configChanges.get()).isZero();

        GuestNet moved = moveToAnotherBus(a, c1);
        assertThat(status(moved) & NetControl.STATUS_ANNOUNCE).as("VIRTIO_NET_S_ANNOUNCE").isNotZero();
        assertThat(status(moved) & VirtioNetModel.STATUS_LINK_UP).isNotZero();
        assertThat(moved.configChanges.get()).as("a configuration change notification").isEqualTo(1);
        assertThat(device(moved).announcePending()).isTrue();
        assertThat(moved.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).isEqualTo(OK);
        assertThat(status(moved) & NetControl.STATUS_ANNOUNCE).isZero();
        assertThat(device(moved).announcePending()).isFalse();
        assertThat(moved.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).as("acked already").isEqualTo(ERR);
    }

    @Test
    void withoutGuestAnnounceNegotiatedARestoreAsksNothing() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c1, ~VirtioNetFeatures.GUEST_ANNOUNCE.mask(), Map.of());
        GuestNet moved = moveToAnotherBus(a, c1);
        assertThat(status(moved) & NetControl.STATUS_ANNOUNCE).isZero();
        assertThat(moved.configChanges.get()).isZero();
    }

    @Test
    void saveAndRestoreCarryPromiscuousModeTheMacTheTablesAndTheOffloads() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c1);
        long mac = MacAddress.parse("02:aa:bb:cc:dd:02");
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(true))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_TABLE_SET, macTables(new long[0], new long[] {MCAST}))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(mac))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_GUEST_OFFLOADS, NetControl.GUEST_OFFLOADS_SET, le(0, 8))).isEqualTo(OK);
        RxFilter before = port(c1, a).rxFilter();

        Container c2 = Bus.withDiscoveredModels().createContainer(c1.name());
        GuestNet moved = moveTo(a, c1, c2);
        assertThat(moved.mac()).isEqualTo(mac);
        assertThat(port(c2, moved).rxFilter()).isEqualTo(before);
        assertThat(port(c2, moved).rxFilter().promiscuous()).isTrue();
        assertThat(port(c2, moved).assignedSource()).hasValue(mac);
        assertThat(Networks.of(c2).require("default").macTable()).containsKey(MacAddress.toString(mac));
        assertThat(device(moved).activeGuestOffloads()).isZero();

        // ... and the restored device's filter works: a peer there sends to someone else, the promiscuous port sees it.
        GuestNet peer = guest(c2), other = guest(c2);
        assertThat(whatArrives(peer, moved, other.mac())).containsExactly(other.mac());
    }

    @Test
    void aDriverThatStartsOverGetsTheOperatorsMacAndAnUnfilteredPortBack() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c);
        long assigned = a.mac();
        assertThat(a.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, on(false))).isEqualTo(OK);
        assertThat(a.command(NetControl.CLASS_MAC, NetControl.MAC_ADDR_SET, MacAddress.toBytes(MacAddress.parse("02:aa:bb:cc:dd:03"))))
                .isEqualTo(OK);
        a.a.close();                                     // detaching resets the device
        try (GuestNet again = new GuestNet(a.device, 256, a.mem, false)) {
            again.negotiate(-1L).start().postRx(256);
            assertThat(again.mac()).isEqualTo(assigned);
            assertThat(port(c, again).rxFilter()).isEqualTo(RxFilter.ACCEPT_ALL);
            assertThat(port(c, again).assignedSource()).hasValue(assigned);
        }
    }

    /**
     * Until MQ went with {@code queue-pairs} > 1 every virtio-net device offered it: a running guest on a one-pair
     * device may have negotiated it. Its saved state is restored (refusing it would break a migration from an older
     * bus), MQ stays in force for that guest and is offered to no new one, and it gives the guest no queue the
     * device lacks: MQ_VQ_PAIRS_SET takes 1 and refuses 2, frames go on. A limit without MQ, a saved pair count above 1
     * or a config space promising two pairs are refused.
     */
    @Test
    void aOnePairStateThatNegotiatedMqUnderTheOldOfferIsRestoredAndItsGuestGetsNoSecondPair() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet a = guest(c1, -1L, Map.of("queue-pairs", "1"));
        a.device.pause();
        DeviceState now = a.device.save();
        assertThat(VirtioNetFeatures.MQ.in(now.negotiated())).as("MQ negotiated under today's offer").isFalse();
        DeviceState old = new DeviceState(now.type(), now.devid(), now.status(), now.limit(), now.negotiated() | VirtioNetFeatures.MQ.mask(),
                now.config(), now.queues(), now.params(), now.model());
        byte[] saved = StateCodec.encode(old);
        c1.removeDevice(a.device.devid());

        Container c2 = Bus.withDiscoveredModels().createContainer(c1.name());
        assertThatThrownBy(() -> c2.restoreDevice(decode(saved), ~VirtioNetFeatures.MQ.mask()))
                .as("this bus's operator limited MQ away").hasMessageContaining(VirtioNetFeatures.MQ.name());
        byte[] twoPairsConfig = old.config();
        twoPairsConfig[VirtioNetModel.CONFIG_MAX_PAIRS] = 2;
        assertThatThrownBy(() -> c2.restoreDevice(new DeviceState(old.type(), old.devid(), old.status(), old.limit(), old.negotiated(),
                twoPairsConfig, old.queues(), old.params(), old.model()))).hasMessageContaining("max_virtqueue_pairs 2, this device has 1");
        VirtioNetState m = (VirtioNetState) old.model();
        assertThatThrownBy(() -> c2.restoreDevice(new DeviceState(old.type(), old.devid(), old.status(), old.limit(), old.negotiated(),
                old.config(), old.queues(), old.params(), new VirtioNetState(m.rxModeSet(), m.promiscuous(), m.allMulti(), m.allUni(),
                        m.noMulti(), m.noUni(), m.noBroadcast(), m.unicast(), m.multicast(), m.unicastOverflow(), m.multicastOverflow(),
                        m.guestOffloads(), 2)))).hasMessageContaining("saved queue pairs 2: this device has 1");

        Device restored = c2.restoreDevice(decode(saved));
        a.reattach(restored);
        restored.resume();
        assertThat(restored.status().isLive()).isTrue();
        assertThat(VirtioNetFeatures.MQ.in(restored.features().negotiated())).as("the saved guest keeps MQ").isTrue();
        assertThat(VirtioNetFeatures.MQ.in(restored.features().offered())).as("offered to a new driver").isFalse();
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, le(2, 2))).as("a second pair").isEqualTo(ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, le(1, 2))).isEqualTo(OK);
        GuestNet peer2 = guest(c2);
        peer2.send(frame(a.mac(), peer2.mac(), 60, 7), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, WAIT)).as("frames reach the restored guest on its one pair").singleElement()
                .satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(7));
    }

    static DeviceState decode(byte[] saved) {
        return StateCodec.decode(saved, Bus.withDiscoveredModels().models()::stateSchema);
    }

    static int status(GuestNet g) {
        return (int) GuestNet.le16(g.a.readConfig(VirtioNetModel.CONFIG_STATUS, 2));
    }

    GuestNet moveToAnotherBus(GuestNet a, Container from) throws Exception {
        return moveTo(a, from, Bus.withDiscoveredModels().createContainer(from.name()));
    }

    /** Pause, save, remove, restore in {@code to}, and the same driver (memory, rings, doorbells) carries on there. */
    GuestNet moveTo(GuestNet a, Container from, Container to) throws Exception {
        a.device.pause();
        byte[] saved = StateCodec.encode(a.device.save());
        from.removeDevice(a.device.devid());
        DeviceState state = StateCodec.decode(saved, Bus.withDiscoveredModels().models()::stateSchema);
        Device restored = to.restoreDevice(state);
        a.reattach(restored);
        restored.resume();
        assertThat(restored.status().isLive()).isTrue();
        return a;
    }
}
