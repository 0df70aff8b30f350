package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A device whose driver breaks its ring goes NEEDS_RESET alone; a paused, saved and restored device carries on. */
class VirtioNetFaultAndRestoreTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    @RegisterExtension
    final RunningGuests guests = new RunningGuests();
    /** Guests whose tx queue has a thread of its own (poll=own), for a test that watches that thread. */
    @RegisterExtension
    final RunningGuests ownThreadGuests = new RunningGuests(Map.of("poll", "own"));

    @Test
    void aDescriptorLoopOnTxResetsThatDeviceOnlyAndTheOthersKeepExchanging() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet bad = guests.in(c), b = guests.in(c), d = guests.in(c);
        // Every device says hello first, so the switch knows every MAC before anything is counted:
        // until it has learned b's, d's unicasts to b would be flooded (to the broken port too).
        bad.send(frame(MacAddress.BROADCAST, bad.mac(), 60, 1), GuestNet.TxLayout.ONE);
        b.send(frame(MacAddress.BROADCAST, b.mac(), 60, 1), GuestNet.TxLayout.ONE);
        d.send(frame(MacAddress.BROADCAST, d.mac(), 60, 1), GuestNet.TxLayout.ONE);
        assertThat(bad.receive(2, WAIT)).hasSize(2);
        assertThat(b.receive(2, WAIT)).hasSize(2);
        assertThat(d.receive(2, WAIT)).hasSize(2);
        var macTable = Networks.of(c).require("default").macTable();
        assertThat(macTable).containsKeys(MacAddress.toString(bad.mac()), MacAddress.toString(b.mac()), MacAddress.toString(d.mac()));
        bad.drainTx(WAIT);

        // The broken driver writes a descriptor that chains to itself and makes it available.
        var seg = bad.mem.segment();
        long desc = GuestNet.TX_RING, avail = GuestNet.TX_RING + 0x8000;
        int slot = 1;                                        // one buffer was made available before
        int di = 7;
        seg.set(ValueLayout.JAVA_LONG_UNALIGNED, desc + 16L * di, GuestNet.G + GuestNet.TX_BUFFERS);
        seg.set(ValueLayout.JAVA_INT_UNALIGNED, desc + 16L * di + 8, 100);
        seg.set(GuestNet.LE16, desc + 16L * di + 12, (short) 1);           // NEXT
        seg.set(GuestNet.LE16, desc + 16L * di + 14, (short) di);          // ... to itself
        seg.set(GuestNet.LE16, avail + 4 + 2L * slot, (short) di);
        seg.set(GuestNet.LE16, avail + 2, (short) (slot + 1));
        bad.txKick.signal();

        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!bad.device.status().has(DeviceStatus.NEEDS_RESET) && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(bad.device.status().has(DeviceStatus.NEEDS_RESET)).isTrue();
        assertThat(bad.device.needsResetReason()).hasValueSatisfying(r -> assertThat(r).contains("queue 1").contains("loops"));
        // It keeps its switch port (counters survive resets), but its link is down: frames for it are dropped and counted.
        assertThat(Networks.of(c).require("default").ports()).hasSize(3);

        for (int i = 0; i < 500; i++) {
            b.send(frame(MacAddress.BROADCAST, b.mac(), 60 + i, i), GuestNet.TxLayout.values()[i % 3]);
            d.send(frame(b.mac(), d.mac(), 1514 - i, i), GuestNet.TxLayout.values()[i % 3]);
            if (i % 100 == 99) {
                assertThat(d.receive(100, WAIT)).hasSize(100).allSatisfy(r -> assertThat(Frames.intact(r.frame())).isTrue());
                assertThat(b.receive(100, WAIT)).hasSize(100).allSatisfy(r -> assertThat(Frames.intact(r.frame())).isTrue());
            }
        }

        assertThat(VirtioNetExchangeTest.stats(c, bad).dropped(dev.jvbus.net.DropReason.PORT_DOWN))
                .as("broadcasts that reached the broken device's port were dropped, not delivered").isEqualTo(500);

        // After a reset the driver can bring the device back.
        bad.a.close();                                       // detaching resets the device
        try (GuestNet again = new GuestNet(bad.device, 256, bad.mem, false)) {
            again.negotiate(-1L).start().postRx(256);
            b.send(frame(MacAddress.BROADCAST, b.mac(), 77, 9), GuestNet.TxLayout.ONE);
            assertThat(again.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(9));
        }
    }

    @Test
    void pausedSavedAndRestoredOnAnotherBusTheStreamContinuesWithNothingLostOrDuplicated() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet a = guests.in(c1), b = guests.in(c1);
        long ma = a.mac(), mb = b.mac();
        int seqA = 0, seqB = 0;
        List<Integer> atA = new ArrayList<>(), atB = new ArrayList<>();

        for (int i = 0; i < 100; i++) {
            a.send(frame(i == 0 ? MacAddress.BROADCAST : mb, ma, 60 + i * 7, ++seqA), GuestNet.TxLayout.ONE);
            b.send(frame(ma, mb, 1514 - i * 5, ++seqB), GuestNet.TxLayout.SPLIT);
            if (i % 50 == 49) {
                b.receive(seqA - atB.size(), WAIT).forEach(r -> atB.add(Frames.seq(r.frame())));
                a.receive(seqB - atA.size(), WAIT).forEach(r -> atA.add(Frames.seq(r.frame())));
            }
        }

        a.device.pause();
        // The guest runs on: a queues frames the paused device will not take yet; b's frames to a are refused.
        for (int i = 0; i < 50; i++) a.send(frame(mb, ma, 100 + i, ++seqA), GuestNet.TxLayout.INDIRECT);
        int droppedWhilePaused = 30;
        for (int i = 0; i < droppedWhilePaused; i++) b.send(frame(ma, mb, 200, ++seqB), GuestNet.TxLayout.ONE);
        b.drainTx(WAIT);
        assertThat(VirtioNetExchangeTest.stats(c1, a).dropped(DropReason.PORT_DOWN)).isEqualTo(droppedWhilePaused);
        assertThat(a.txq.outstanding()).isEqualTo(50);

        byte[] saved = StateCodec.encode(a.device.save());
        c1.removeDevice(a.device.devid());                   // the old device is gone (its port left the switch)
        Bus bus2 = Bus.withDiscoveredModels();
        Container c2 = bus2.createContainer(c1.name());
        // Two buses share no network, whatever the names: like two hosts, the destination's network is
        // cabled to the source's, so b (left behind on bus 1) still reaches a.
        NetworkPatch cable = NetworkPatch.between(Networks.of(c1).require("default"), Networks.of(c2).getOrCreate("default"));
        DeviceState state = StateCodec.decode(saved, bus2.models()::stateSchema);
        Device restored = c2.restoreDevice(state);
        a.reattach(restored);
        restored.resume();
        assertThat(restored.status().isLive()).isTrue();

        for (int i = 0; i < 100; i++) {
            a.send(frame(mb, ma, 60 + i, ++seqA), GuestNet.TxLayout.values()[i % 3]);
            b.send(frame(ma, mb, 61 + i, ++seqB), GuestNet.TxLayout.values()[i % 3]);
            if (i % 50 == 49) {
                b.receive(seqA - atB.size(), WAIT).forEach(r -> atB.add(Frames.seq(r.frame())));
                a.receive(seqB - droppedWhilePaused - atA.size(), WAIT).forEach(r -> atA.add(Frames.seq(r.frame())));
            }
        }
        List<Integer> expectB = new ArrayList<>(), expectA = new ArrayList<>();
        for (int s = 1; s <= seqA; s++) expectB.add(s);
        for (int s = 1; s <= seqB; s++) if (s <= 100 || s > 100 + droppedWhilePaused) expectA.add(s);
        assertThat(atB).as("every frame a sent, the 50 queued while paused included, once, in order").isEqualTo(expectB);
        assertThat(atA).as("every frame b sent except those refused while a was paused").isEqualTo(expectA);
        assertThat(VirtioNetExchangeTest.stats(c2, a).dropped()).isZero();
        cable.close();
        bus2.destroyContainer(c2.name());
    }

    @Test
    @org.junit.jupiter.api.Timeout(value = 120, unit = java.util.concurrent.TimeUnit.SECONDS,
            threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
    void aFaultOfTheDriversPreviousSessionLandingAfterItsResetDoesNotMarkTheNextSession() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet bad = ownThreadGuests.in(c), b = guests.in(c);   // poll=own: the tx worker's own thread, watched below
        String workerName = ((VirtioNetDevice) bad.a.function()).name() + "-tx";
        Thread oldWorker = Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(workerName))
                .findFirst().orElseThrow();
        Device device = bad.device;
        GuestNet again;
        // A control call holds the device (as the driver's reset will) when the worker finds the fault; the
        // driver resets and starts a new session before the report can land.
        synchronized (device) {
            var seg = bad.mem.segment();
            long desc = GuestNet.TX_RING, avail = GuestNet.TX_RING + 0x8000;
            int di = 7;                                          // a descriptor that chains to itself
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, desc + 16L * di, GuestNet.G + GuestNet.TX_BUFFERS);
            seg.set(ValueLayout.JAVA_INT_UNALIGNED, desc + 16L * di + 8, 100);
            seg.set(GuestNet.LE16, desc + 16L * di + 12, (short) 1);
            seg.set(GuestNet.LE16, desc + 16L * di + 14, (short) di);
            seg.set(GuestNet.LE16, avail + 4, (short) di);
            seg.set(GuestNet.LE16, avail + 2, (short) 1);
            bad.txKick.signal();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (oldWorker.isAlive() && System.nanoTime() < deadline) Thread.sleep(1);
            assertThat(oldWorker.isAlive()).as("the faulting worker handed its report off and ended").isFalse();
            bad.a.close();                                       // the driver resets (detaching resets the device)
            again = new GuestNet(device, 256, bad.mem, false);
            again.negotiate(-1L).start().postRx(256);
        }
        try (again) {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (device.lateFaultsIgnored() == 0 && System.nanoTime() < deadline) Thread.sleep(1);
            assertThat(device.lateFaultsIgnored()).as("the first session's fault landed and was ignored").isEqualTo(1);
            assertThat(device.status().has(DeviceStatus.NEEDS_RESET)).as("the new session is not marked").isFalse();
            b.send(frame(MacAddress.BROADCAST, b.mac(), 77, 9), GuestNet.TxLayout.ONE);
            assertThat(again.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(9));
            again.send(frame(MacAddress.BROADCAST, again.mac(), 78, 10), GuestNet.TxLayout.ONE);
            assertThat(b.receive(1, WAIT)).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(10));
        }
    }
}
