package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static dev.jvbus.model.venet.VenetSwitchTest.fn;
import static dev.jvbus.model.venet.VenetSwitchTest.poll;
import static dev.jvbus.model.venet.VenetSwitchTest.range;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The venet DEVCALL verbs, NEGCAP against the operator's limit, the event queue, SG frames. */
class VenetDevcallTest {
    static final int EVQ_ALL = VenetWire.CAP_EVQ_LINKSTATE | VenetWire.CAP_EVQ_TXC;

    @Test
    void macQueryAnswersTheConfiguredMacAndParametersAreChecked() throws Exception {
        Container c = Frames.container();
        Device d = c.addDevice("venet", -1, Map.of("mac", "02:11:22:33:44:55"));
        try (VenetGuest g = new VenetGuest(Options.flat()).bringUp(d)) {
            assertThat(MacAddress.toString(g.mac())).isEqualTo("02:11:22:33:44:55");
            assertThat(g.att.readConfig(0, 6)).isEqualTo(MacAddress.toBytes(g.mac()));
            assertThat(g.att.readConfig(6, 2)).containsExactly(1, 0);     // link up
            assertThat(fn(g).settings().network()).isEqualTo("default");
        }
        Device derived = c.addDevice("venet");
        assertThat(((VenetFunction) derived.attach("x", null).function()).mac())
                .isEqualTo(VenetSettings.derivedMac(c.name(), derived.devid().value()));
        assertThatThrownBy(() -> c.addDevice("venet", -1, Map.of("speed", "10G")))
                .isInstanceOf(BusException.class).hasMessageContaining("unknown venet parameter 'speed'").hasMessageContaining("[network, mac, mtu, mac-spoof-check, queue-size, busy-poll]");
        assertThatThrownBy(() -> c.addDevice("venet", -1, Map.of("mtu", "20")))
                .isInstanceOf(BusException.class).hasMessageContaining("'mtu' must be in 68..65535");
        assertThatThrownBy(() -> c.addDevice("venet", -1, Map.of("mac", "ff:ff:ff:ff:ff:ff")))
                .isInstanceOf(BusException.class).hasMessageContaining("unicast");
    }

    @Test
    void linkDownDropsDeliveriesAndLinkStateAndTxCompleteEventsArrive() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat().withEvents(EVQ_ALL)).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat().withEvents(VenetWire.CAP_EVQ_LINKSTATE)).bringUp(db)) {
            assertThat(a.grantedEvq).isEqualTo(EVQ_ALL);
            assertThat(b.grantedEvq).isEqualTo(VenetWire.CAP_EVQ_LINKSTATE);
            awaitTrue(() -> poll(b) >= 0 && b.linkEvents.size() == 1, "LINKUP event at B");
            long ma = a.mac();
            for (int i = 0; i < 3; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 80, i));
            awaitTrue(() -> poll(b) == 3, "frames at B");

            b.call(VenetWire.FUNC_LINKDOWN, new byte[0]);
            assertThat(b.att.readConfig(6, 2)).containsExactly(0, 0);
            awaitTrue(() -> poll(b) >= 0 && b.linkEvents.size() == 2, "LINKDOWN event at B");
            for (int i = 3; i < 6; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 80, i));
            awaitTrue(() -> fn(a).txFrames == 6, "A sent 6");
            assertThat(fn(b).rxDropsPortDown).isEqualTo(3);
            assertThat(fn(b).port().stats().dropped(DropReason.PORT_DOWN)).isEqualTo(3);

            b.call(VenetWire.FUNC_LINKUP, new byte[0]);
            for (int i = 6; i < 9; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 80, i));
            awaitTrue(() -> poll(b) == 6 && b.linkEvents.size() == 3, "frames and LINKUP event at B");
            assertThat(b.linkEvents).containsExactly(1, 0, 1);
            assertThat(b.received.stream().map(Frames::seq).toList()).containsExactly(0L, 1L, 2L, 6L, 7L, 8L);
            // A asked for TXC: one tx-complete event per frame, with the frame's cookie, in order.
            awaitTrue(() -> poll(a) >= 0 && a.txcCookies.size() == 9, "TXC events at A");
            assertThat(a.txcCookies).containsExactlyElementsOf(range(0, 9));
            assertThat(a.linkEvents).containsExactly(1);
            assertThat(fn(a).eventsTxc).isEqualTo(9);
            assertThat(fn(b).eventsTxc).isZero();
            assertThat(fn(b).eventsLinkstate).isEqualTo(3);
            System.out.printf("venet events: A TXC %d, A evq signals sent %d suppressed %d%n",
                    fn(a).eventsTxc, a.evq.signal().signalsSent, a.evq.signal().signalsSuppressed);
        }
    }

    @Test
    void negcapGrantsOnlyWhatTheOperatorLeftAndTheFlatPathWorksWithoutSg() throws Exception {
        Container c = Frames.container();
        Device limited = c.addDevice("venet", ~VenetModel.SG.mask(), Map.of("network", "lan"));
        Device full = c.addDevice("venet", -1, Map.of("network", "lan"));
        int wanted = VenetWire.CAP_SG | VenetWire.CAP_TSO4 | VenetWire.CAP_TSO6 | VenetWire.CAP_ECN | VenetWire.CAP_UFO | VenetWire.CAP_PMTD;
        Options sgPlease = new Options(wanted, EVQ_ALL, true, 1514);
        try (VenetGuest l = new VenetGuest(sgPlease).bringUp(limited);
             VenetGuest f = new VenetGuest(sgPlease).bringUp(full)) {
            assertThat(limited.features().offered() & VenetModel.SG.mask()).isZero();
            assertThat(l.grantedSg).as("SG limited away by the operator").isZero();
            assertThat(f.grantedSg).as("only SG is implemented in the SG group").isEqualTo(VenetWire.CAP_SG);
            l.call(VenetWire.FUNC_LINKDOWN, new byte[0]);
            assertThat(l.negcap(VenetWire.CAP_GROUP_L4RO, -1)).as("L4RO is not implemented").isZero();
            assertThat(l.negcap(7, -1)).as("unknown group").isZero();
            l.call(VenetWire.FUNC_LINKUP, new byte[0]);
            assertThat(VenetModel.SG.in(full.features().negotiated())).isTrue();
            assertThat(fn(f).grantedFeatures()).isEqualTo(VenetModel.SG.mask() | VenetModel.EVQ_LINKSTATE.mask() | VenetModel.EVQ_TXC.mask());
            assertThat(fn(l).grantedFeatures() & VenetModel.SG.mask()).isZero();

            // limited sends flat frames, full sends venet_sg descriptors (one or two iovs); both arrive intact.
            long ml = l.mac(), mf = f.mac();
            for (int i = 0; i < 20; i++) l.sendBlocking(frame(MacAddress.BROADCAST, ml, 60 + 70 * i, i));
            for (int i = 0; i < 20; i++) f.sendBlocking(frame(MacAddress.BROADCAST, mf, 60 + 70 * i, 100 + i));
            awaitTrue(() -> poll(f) == 20 && poll(l) == 20, "frames both ways");
            for (int i = 0; i < 20; i++) {
                assertThat(f.received.get(i)).isEqualTo(frame(MacAddress.BROADCAST, ml, 60 + 70 * i, i));
                assertThat(l.received.get(i)).isEqualTo(frame(MacAddress.BROADCAST, mf, 60 + 70 * i, 100 + i));
            }
            awaitTrue(() -> poll(f) >= 0 && f.txcCookies.size() == 20, "TXC with SG");
            assertThat(f.txcCookies).as("TXC carries the venet_sg cookie").containsExactlyElementsOf(range(0, 20));

            // Checksum offload: a UDP frame whose checksum field holds only the pseudo-header sum.
            byte[] udp = udpFrame(mf, 300);
            f.sendBlocking(udp, 34, 6);
            awaitTrue(() -> poll(l) == 21, "checksummed frame");
            byte[] got = l.received.getLast();
            assertThat(checksumOk(got)).as("UDP checksum completed by the device").isTrue();
            assertThat(java.util.Arrays.copyOfRange(got, 42, got.length)).isEqualTo(java.util.Arrays.copyOfRange(udp, 42, udp.length));
            assertThat(fn(f).txChecksums).isEqualTo(1);
        }
    }

    @Test
    void badPayloadsAreRefusedWithClearMessagesAndTheDeviceKeepsWorking() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db)) {
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_MACQUERY, new byte[3]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("MACQUERY takes a 6-byte payload, got 3 bytes");
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_NEGCAP, new byte[5]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("NEGCAP takes a 8-byte payload");
            assertThatThrownBy(() -> a.negcap(VenetWire.CAP_GROUP_SG, VenetWire.CAP_SG))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("NEGCAP while the link is up");
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_LINKUP, new byte[0]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("already up");
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_LINKDOWN, new byte[4]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("LINKDOWN takes a 0-byte payload");
            assertThatThrownBy(() -> a.call(99, new byte[0]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("unknown venet device call 99");
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_PMTDQUERY, new byte[0]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("not offered");
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_EVQQUERY, new byte[32]))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("EVQQUERY while the link is up");
            a.call(VenetWire.FUNC_LINKDOWN, new byte[0]);
            byte[] q = new byte[32];
            q[0] = 1;
            assertThatThrownBy(() -> a.call(VenetWire.FUNC_EVQQUERY, q))
                    .isInstanceOf(DeviceFault.class).hasMessageContaining("EVQQUERY flags must be 0");
            ByteBuffer r = ByteBuffer.wrap(a.call(VenetWire.FUNC_EVQQUERY, new byte[32])).order(ByteOrder.LITTLE_ENDIAN);
            assertThat(List.of(r.getInt(4), r.getInt(12))).containsExactly(VenetWire.EVQ_EVSIZE, VenetWire.QUEUE_EVQ);
            a.call(VenetWire.FUNC_LINKUP, new byte[0]);

            assertThat(da.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
            long ma = a.mac();
            for (int i = 0; i < 5; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 64, i));
            awaitTrue(() -> poll(b) == 5, "frames after the refused calls");

            // FLUSHRX hands every posted rx buffer back empty.
            a.call(VenetWire.FUNC_FLUSHRX, new byte[0]);
            assertThat(fn(a).rxFlushed).isEqualTo(VenetGuest.COUNT);
            a.poll();
            assertThat(a.rxZeroLength).isEqualTo(VenetGuest.COUNT);
            b.sendBlocking(frame(MacAddress.BROADCAST, b.mac(), 64, 77));
            awaitTrue(() -> poll(a) == 1, "frame into the reposted buffers");
        }
    }

    /** eth + IPv4 (10.0.0.1 -> 10.0.0.2) + UDP, checksum field = pseudo-header sum (CHECKSUM_PARTIAL). */
    static byte[] udpFrame(long src, int payload) {
        int udpLen = 8 + payload;
        ByteBuffer b = ByteBuffer.allocate(14 + 20 + udpLen);
        b.put(MacAddress.toBytes(MacAddress.BROADCAST)).put(MacAddress.toBytes(src)).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) (20 + udpLen)).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0);
        b.put(new byte[] {10, 0, 0, 1}).put(new byte[] {10, 0, 0, 2});
        b.putShort((short) 4000).putShort((short) 5000).putShort((short) udpLen).putShort((short) 0);
        for (int i = 0; i < payload; i++) b.put((byte) (i * 7));
        byte[] f = b.array();
        int pseudo = InternetChecksum.fold(pseudoSum(f, udpLen));
        f[40] = (byte) (pseudo >>> 8);
        f[41] = (byte) pseudo;
        return f;
    }

    static long pseudoSum(byte[] f, int udpLen) {
        long s = 0;
        for (int i = 26; i < 34; i += 2) s += ((f[i] & 0xff) << 8) | (f[i + 1] & 0xff);
        return s + 17 + udpLen;
    }

    static boolean checksumOk(byte[] f) {
        int udpLen = f.length - 34;
        long s = pseudoSum(f, udpLen) + InternetChecksum.sum(java.lang.foreign.MemorySegment.ofArray(f), 34, f.length);
        return InternetChecksum.fold(s) == 0xFFFF;
    }
}
