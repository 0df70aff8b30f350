package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * vhost-user's "started but disabled" rings (vhost-user.rst, Ring states): the device keeps
 * processing them without side effects — tx is taken and discarded, no rx is supplied — until
 * the ring is enabled again, without a restart.
 */
class VirtioNetInactiveQueueTest {
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
    void aDisabledRingIsProcessedWithoutSideEffectsAndEnablingResumesIt() throws Exception {
        GuestNet a = guest(), b = guest();
        a.postRx(64);
        b.postRx(64);
        long ma = a.mac(), mb = b.mac();
        a.send(frame(MacAddress.BROADCAST, ma, 60, 0), GuestNet.TxLayout.ONE);
        b.send(frame(MacAddress.BROADCAST, mb, 60, 0), GuestNet.TxLayout.ONE);
        assertThat(a.receive(1, Duration.ofSeconds(10))).hasSize(1);
        assertThat(b.receive(1, Duration.ofSeconds(10))).hasSize(1);

        // a's tx disabled: its frames are taken off the ring (used, so the guest does not stall) but go nowhere
        a.a.setQueueActive(VirtioNetModel.TX0, false);
        for (int i = 1; i <= 5; i++) a.send(frame(mb, ma, 100, i), GuestNet.TxLayout.ONE);
        VirtioNetStats sa = awaitStats(a, s -> s.txDropInactive() == 5);
        assertThat(sa.txFrames()).isEqualTo(1);
        assertThat(b.receive(1, Duration.ofMillis(200))).isEmpty();

        // a's rx disabled: frames for it are not supplied (counted as PORT_DOWN on its port)
        a.a.setQueueActive(VirtioNetModel.RX0, false);
        for (int i = 1; i <= 3; i++) b.send(frame(ma, mb, 100, i), GuestNet.TxLayout.ONE);
        awaitStats(a, s -> s.rxDropped(DropReason.PORT_DOWN) == 3);
        assertThat(a.receive(1, Duration.ofMillis(200))).isEmpty();

        // enabled again, no restart: both directions flow
        a.a.setQueueActive(VirtioNetModel.TX0, true);
        a.a.setQueueActive(VirtioNetModel.RX0, true);
        a.send(frame(mb, ma, 100, 9), GuestNet.TxLayout.ONE);
        b.send(frame(ma, mb, 100, 9), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, Duration.ofSeconds(10))).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(9));
        assertThat(a.receive(1, Duration.ofSeconds(10))).singleElement().satisfies(r -> assertThat(Frames.seq(r.frame())).isEqualTo(9));
    }

    private static VirtioNetStats awaitStats(GuestNet g, java.util.function.Predicate<VirtioNetStats> p) throws Exception {
        VirtioNetStats s = VirtioNetExchangeTest.deviceStats(g);
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();   // a busy machine, not a speed claim
        while (!p.test(s) && System.nanoTime() < deadline) {
            Thread.sleep(1);
            g.reclaimTx();
            s = VirtioNetExchangeTest.deviceStats(g);
        }
        assertThat(p.test(s)).as("stats " + s).isTrue();
        return s;
    }
}
