package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.feature.VirtioFeatures;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * VIRTIO_F_IN_ORDER on virtio-net, with drivers whose rings run in order too (they refuse a buffer used
 * out of order): tx batches come back as one used element, merged rx buffers in the order they were
 * taken, and every frame arrives intact, once, in order.
 */
class VirtioNetInOrderTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    static final int SENTINEL = 0xffff;
    @RegisterExtension
    final RunningGuests guests = new RunningGuests(Map.of("mtu", "9000"));

    @Test
    void aTxBatchComesBackAsOneUsedElementAndEveryFrameArrivesInOrder() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guests.in(c), b = guests.in(c);
        assertThat(VirtioFeatures.IN_ORDER.in(a.features)).as("IN_ORDER offered and negotiated").isTrue();
        a.send(frame(b.mac(), a.mac(), 60, 0), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).hasSize(1);
        a.drainTx(WAIT);

        // Mark a's tx used ring elements, so the ones the device writes show.
        var seg = a.mem.segment();
        long elems = GuestNet.TX_RING + 0x1_0000 + 4;
        for (int i = 0; i < a.queueSize; i++) seg.set(ValueLayout.JAVA_INT_UNALIGNED, elems + 8L * i, SENTINEL);
        int n = 32;
        a.device.pause();                                  // the batch is all there when the worker looks again
        for (int i = 1; i <= n; i++) a.send(frame(b.mac(), a.mac(), 60 + i, i), GuestNet.TxLayout.values()[i % 3]);
        a.device.resume();

        List<Integer> seqs = new ArrayList<>();
        b.receive(n, WAIT).forEach(r -> {
            assertThat(Frames.intact(r.frame())).isTrue();
            seqs.add(Frames.seq(r.frame()));
        });
        assertThat(seqs).hasSize(n).isSorted().startsWith(1).endsWith(n);
        a.drainTx(WAIT);
        assertThat(a.txCompleted).isEqualTo(n + 1);
        int written = 0;
        for (int slot = 1; slot <= n; slot++) if (seg.get(ValueLayout.JAVA_INT_UNALIGNED, elems + 8L * slot) != SENTINEL) written++;
        assertThat(written).as("used elements written for a batch of " + n + " tx buffers").isEqualTo(1);
    }

    @Test
    void mergedRxBuffersAreUsedInOrderAndLargeFramesArriveIntact() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guests.in(c), b = guests.in(c);
        assertThat(b.mergeable).isTrue();
        assertThat(VirtioFeatures.IN_ORDER.in(b.features)).as("IN_ORDER: the driver's rx ring refuses a buffer used out of order").isTrue();
        for (int i = 1; i <= 200; i++) {
            a.send(frame(b.mac(), a.mac(), 4000 + i * 17, i), GuestNet.TxLayout.values()[i % 3]);
            if (i % 50 == 0) {
                List<GuestNet.Rx> got = b.receive(50, WAIT);
                assertThat(got).hasSize(50).allSatisfy(r -> {
                    assertThat(Frames.intact(r.frame())).isTrue();
                    assertThat(r.numBuffers()).isGreaterThan(2);
                });
                assertThat(Frames.seq(got.getFirst().frame())).isEqualTo(i - 49);
            }
        }
        assertThat(VirtioNetExchangeTest.stats(c, b).dropped()).isZero();
    }
}
