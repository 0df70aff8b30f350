package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * virtio-net stops and starts rx or tx alone (virtio 1.2 queue reset, vhost-user's per-ring stop and
 * start): the other queue runs on, and the stopped one carries on from its saved position, losing
 * and repeating nothing. Two devices on one switch, each driven by a guest driver over a real memfd.
 */
class VirtioNetQueueResetTest {
    static final QueueConfig TX = new QueueConfig(1, 256, GuestNet.G + GuestNet.TX_RING, GuestNet.G + GuestNet.TX_RING + 0x8000,
            GuestNet.G + GuestNet.TX_RING + 0x1_0000);
    static final QueueConfig RX = new QueueConfig(0, 256, GuestNet.G + GuestNet.RX_RING, GuestNet.G + GuestNet.RX_RING + 0x8000,
            GuestNet.G + GuestNet.RX_RING + 0x1_0000);
    final Container container = VirtioNetExchangeTest.newContainer();
    final List<GuestNet> guests = new ArrayList<>();

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    GuestNet guest() throws Exception {
        GuestNet g = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(g);
        return g.negotiate(-1L).start();
    }

    @Test
    void txStoppedAloneLeavesRxRunningAndRestartsFromItsPositionLosingNothing() throws Exception {
        GuestNet a = guest(), b = guest();
        a.postRx(64);
        b.postRx(64);
        long ma = a.mac(), mb = b.mac();
        a.send(frame(mb, ma, 100, 0), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, Duration.ofSeconds(10))).hasSize(1);
        a.drainTx(Duration.ofSeconds(10));
        Device.DataPathEvents before = a.device.dataPathEvents();

        QueueState tx = a.a.stopQueue(VirtioNetModel.TX0).orElseThrow();
        assertThat(tx.nextAvail()).isEqualTo(1);
        for (int i = 1; i <= 5; i++) a.send(frame(mb, ma, 100, i), GuestNet.TxLayout.ONE);   // offered while tx is stopped
        b.send(frame(ma, mb, 100, 7), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, Duration.ofSeconds(10))).as("rx runs on").singleElement()
                .satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(7));
        assertThat(a.txq.outstanding()).as("a stopped tx takes nothing").isEqualTo(5);

        a.a.startQueue(TX, tx, a.txKick, Notifier.of(a.txCall));
        List<GuestNet.Rx> got = b.receive(5, Duration.ofSeconds(10));
        assertThat(got).extracting(r -> Frames.seq(r.frame())).as("tx carried on from its position").containsExactly(1, 2, 3, 4, 5);
        assertThat(a.device.dataPathEvents()).isEqualTo(new Device.DataPathEvents(before.starts(), before.stops(), before.pauses(),
                before.queueStops() + 1, before.queueStarts() + 1, 0));
    }

    @Test
    void rxStoppedAloneDropsAsPortDownWhileTxRunsAndRestartsFromItsPosition() throws Exception {
        GuestNet a = guest(), b = guest();
        a.postRx(64);
        b.postRx(64);
        long ma = a.mac(), mb = b.mac();
        b.send(frame(ma, mb, 100, 0), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, Duration.ofSeconds(10))).hasSize(1);

        QueueState rx = a.a.stopQueue(VirtioNetModel.RX0).orElseThrow();
        assertThat(rx.nextUsed()).isEqualTo(1);
        for (int i = 1; i <= 3; i++) b.send(frame(ma, mb, 100, i), GuestNet.TxLayout.ONE);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();   // a busy machine, not a speed claim
        while (VirtioNetExchangeTest.deviceStats(a).rxDropped(DropReason.PORT_DOWN) < 3 && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(VirtioNetExchangeTest.deviceStats(a).rxDropped(DropReason.PORT_DOWN)).as("a stopped rx supplies nothing").isEqualTo(3);
        a.send(frame(mb, ma, 100, 8), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, Duration.ofSeconds(10))).as("tx runs on").singleElement()
                .satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(8));

        a.a.startQueue(RX, rx, a.rxKick, Notifier.of(a.rxCall));
        b.send(frame(ma, mb, 100, 9), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, Duration.ofSeconds(10))).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(9));
        assertThat(a.device.needsResetReason()).isEmpty();
    }
}
