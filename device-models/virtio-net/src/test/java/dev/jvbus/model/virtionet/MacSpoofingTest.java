package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.model.venet.VenetFunction;
import dev.jvbus.model.venet.VenetGuest;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Source-MAC enforcement on device ports, end to end through real guests of both models on one switch:
 * a device that sends from another device's MAC (or a group or zero source) has the frame dropped and
 * counted as SPOOFED_SOURCE on its own port, the switch keeps the victim's MAC on the victim's port and
 * the victim keeps its traffic; an operator who turns {@code mac-spoof-check} off gets the old learning
 * switch for that device.
 */
class MacSpoofingTest {
    static final String NETWORK = "spoof";
    static final Duration WAIT = Duration.ofSeconds(20);
    static final int SPOOFS = 50;

    final List<AutoCloseable> drivers = new ArrayList<>();
    final Container container = Bus.withDiscoveredModels().createContainer("spoof-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    final L2Switch sw = Networks.of(container).getOrCreate(NETWORK);
    int seq;

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable d : drivers.reversed()) d.close();
    }

    GuestNet virtio(Map<String, String> extra) throws Exception {
        Map<String, String> p = new HashMap<>(extra);
        p.put("network", NETWORK);
        GuestNet g = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, p), 256);
        drivers.add(g);
        g.negotiate(-1L).start();
        g.postRx(256);
        return g;
    }

    VenetGuest venet(Map<String, String> extra) throws Exception {
        Map<String, String> p = new HashMap<>(extra);
        p.put("network", NETWORK);
        VenetGuest g = new VenetGuest(VenetGuest.Options.flat());
        drivers.add(g);
        g.bringUp(container.addDevice("venet", -1L, p));
        return g;
    }

    String port(GuestNet g) { return ((VirtioNetDevice) g.a.function()).name(); }

    String port(VenetGuest g) { return ((VenetFunction) g.attachment().function()).name(); }

    PortStats stats(String port) {
        return sw.stats().stream().filter(s -> s.port().equals(port)).findFirst().orElseThrow();
    }

    static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened within " + WAIT + ": " + what);
            LockSupport.parkNanos(1_000_000);
        }
    }

    /** Takes frames with {@code take} until one carries {@code seq}; returns all it took. */
    static List<byte[]> awaitFrame(Callable<List<byte[]>> take, int seq, String what) {
        List<byte[]> got = new ArrayList<>();
        await(() -> {
            try {
                got.addAll(take.call());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            return got.stream().anyMatch(f -> Frames.seq(f) == seq);
        }, what);
        return got;
    }

    /** Frames the virtio-net guest received since the last call. */
    static List<byte[]> take(GuestNet g) throws Exception {
        List<byte[]> out = new ArrayList<>();
        for (GuestNet.Rx r; (r = g.poll()) != null; ) out.add(r.frame());
        return out;
    }

    static List<byte[]> take(VenetGuest g) throws Exception {
        g.poll();
        List<byte[]> out = new ArrayList<>(g.received);
        g.received.clear();
        return out;
    }

    static long src(byte[] f) {
        return MacAddress.fromBytes(java.util.Arrays.copyOfRange(f, 6, 12));
    }

    @Test
    void aVenetDeviceSendingFromAVirtioNetDevicesMacIsDroppedAndCountedAndTheVictimKeepsItsTraffic() throws Exception {
        GuestNet victim = virtio(Map.of()), peer = virtio(Map.of());
        VenetGuest thief = venet(Map.of());
        long victimMac = victim.mac(), thiefMac = thief.mac();

        int victimsOwn = ++seq;
        victim.send(frame(MacAddress.BROADCAST, victimMac, 60, victimsOwn), GuestNet.TxLayout.ONE);
        await(() -> port(victim).equals(sw.macTable().get(MacAddress.toString(victimMac))), "the switch learns the victim's MAC");

        for (int i = 0; i < SPOOFS; i++) thief.sendBlocking(frame(peer.mac(), victimMac, 60, ++seq));
        for (int i = 0; i < SPOOFS; i++) thief.sendBlocking(frame(MacAddress.BROADCAST, victimMac, 60, ++seq));
        await(() -> stats(port(thief)).dropped(DropReason.SPOOFED_SOURCE) == 2 * SPOOFS, "the thief's frames are refused and counted");

        assertThat(sw.macTable()).as("the victim's MAC stays on the victim's port")
                .containsEntry(MacAddress.toString(victimMac), port(victim));
        assertThat(stats(port(thief)).rxFrames()).as("nothing the thief sent entered the switch").isZero();

        // The victim keeps its traffic: a peer's unicast to the victim's MAC reaches the victim, not the thief.
        int toVictim = seq + 1;
        peer.send(frame(victimMac, peer.mac(), 60, toVictim), GuestNet.TxLayout.ONE);
        List<byte[]> atVictim = awaitFrame(() -> take(victim), toVictim, "the victim receives the peer's unicast");
        assertThat(atVictim).noneMatch(f -> src(f) == victimMac);   // nothing of the thief's reached it
        List<byte[]> atThief = take(thief);
        assertThat(atThief).as("the thief got nothing meant for the victim").noneMatch(f -> Frames.seq(f) == toVictim);
        List<byte[]> atPeer = take(peer);
        assertThat(atPeer).as("the thief's frames reached no one").noneMatch(f -> src(f) == victimMac && Frames.seq(f) != victimsOwn);

        // The thief may still speak as itself.
        thief.sendBlocking(frame(peer.mac(), thiefMac, 60, ++seq));
        await(() -> stats(port(thief)).rxFrames() == 1, "the thief's own frame enters the switch");
        assertThat(stats(port(thief)).dropped(DropReason.SPOOFED_SOURCE)).isEqualTo(2 * SPOOFS);
    }

    @Test
    void aVirtioNetDeviceSendingFromAVenetDevicesMacIsDroppedAndCountedAndTheVictimKeepsItsTraffic() throws Exception {
        VenetGuest victim = venet(Map.of());
        GuestNet thief = virtio(Map.of()), peer = virtio(Map.of());
        long victimMac = victim.mac();

        int victimsOwn = ++seq;
        victim.sendBlocking(frame(MacAddress.BROADCAST, victimMac, 60, victimsOwn));
        await(() -> port(victim).equals(sw.macTable().get(MacAddress.toString(victimMac))), "the switch learns the victim's MAC");

        for (int i = 0; i < SPOOFS; i++) thief.send(frame(MacAddress.BROADCAST, victimMac, 60, ++seq), GuestNet.TxLayout.values()[i % 3]);
        await(() -> stats(port(thief)).dropped(DropReason.SPOOFED_SOURCE) == SPOOFS, "the thief's frames are refused and counted");
        assertThat(sw.macTable()).containsEntry(MacAddress.toString(victimMac), port(victim));

        int toVictim = ++seq;
        peer.send(frame(victimMac, peer.mac(), 60, toVictim), GuestNet.TxLayout.ONE);
        List<byte[]> atVictim = awaitFrame(() -> take(victim), toVictim, "the victim receives the peer's unicast");
        assertThat(take(thief)).noneMatch(f -> Frames.seq(f) == toVictim);
        assertThat(take(peer)).as("the thief's broadcasts reached no one").noneMatch(f -> src(f) == victimMac && Frames.seq(f) != victimsOwn);
    }

    @Test
    void groupAndZeroSourceMacsFromADeviceAreRefusedAndCounted() throws Exception {
        GuestNet sender = virtio(Map.of());
        VenetGuest venetSender = venet(Map.of());
        GuestNet listener = virtio(Map.of());
        long[] sources = {MacAddress.BROADCAST, MacAddress.parse("01:00:5e:00:00:fb"), MacAddress.parse("33:33:00:00:00:01"), 0};
        for (long s : sources) {
            sender.send(frame(MacAddress.BROADCAST, s, 60, ++seq), GuestNet.TxLayout.ONE);
            venetSender.sendBlocking(frame(MacAddress.BROADCAST, s, 60, ++seq));
        }
        await(() -> stats(port(sender)).dropped(DropReason.SPOOFED_SOURCE) == sources.length
                && stats(port(venetSender)).dropped(DropReason.SPOOFED_SOURCE) == sources.length, "every group or zero source is refused");
        assertThat(stats(port(listener)).txFrames()).isZero();
        assertThat(take(listener)).isEmpty();
        assertThat(sw.macTable()).as("nothing learned: only the devices' own MACs, from hotplug on").hasSize(3)
                .doesNotContainKeys(java.util.Arrays.stream(sources).mapToObj(MacAddress::toString).toArray(String[]::new));
    }

    @Test
    void withTheCheckTurnedOffByTheOperatorADeviceMaySendFromAnyMacAsBefore() throws Exception {
        GuestNet bridge = virtio(Map.of("mac-spoof-check", "off"));
        VenetGuest venetBridge = venet(Map.of("mac-spoof-check", "off"));
        GuestNet listener = virtio(Map.of());
        long behindBridge = MacAddress.local(0xB21D6E), behindVenet = MacAddress.local(0xB21D6F);

        bridge.send(frame(MacAddress.BROADCAST, behindBridge, 60, ++seq), GuestNet.TxLayout.ONE);
        venetBridge.sendBlocking(frame(MacAddress.BROADCAST, behindVenet, 60, ++seq));
        await(() -> stats(port(listener)).txFrames() == 2, "both foreign-source broadcasts are delivered");
        assertThat(sw.macTable()).containsEntry(MacAddress.toString(behindBridge), port(bridge))
                .containsEntry(MacAddress.toString(behindVenet), port(venetBridge));
        assertThat(stats(port(bridge)).dropped()).isZero();
        assertThat(stats(port(venetBridge)).dropped()).isZero();
        List<byte[]> got = new ArrayList<>();
        await(() -> {
            try {
                got.addAll(take(listener));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
            return got.size() == 2;
        }, "the listener receives both");
        assertThat(got).extracting(MacSpoofingTest::src).containsExactlyInAnyOrder(behindBridge, behindVenet);
    }

    @Test
    void aMacSpoofCheckThatIsNeitherOnNorOffIsRefusedByName() {
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac-spoof-check", "maybe")))
                .isInstanceOf(BusException.class).hasMessageContaining("'mac-spoof-check' must be on or off, not 'maybe'");
        assertThatThrownBy(() -> container.addDevice("venet", -1L, Map.of("mac-spoof-check", "1")))
                .isInstanceOf(BusException.class).hasMessageContaining("'mac-spoof-check' must be on or off, not '1'");
    }
}
