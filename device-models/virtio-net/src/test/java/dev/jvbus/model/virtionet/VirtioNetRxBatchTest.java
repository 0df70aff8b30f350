package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameOffload;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.FrameMeta;
import dev.jvbus.net.SendBatch;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A receiving virtio-net device publishes a sender's batch at once (bench-switch's profile, issue 18): the
 * frames one tx batch delivers to a peer cost the peer's rx ring one used-index store and one notify
 * decision, not one per frame, and frames taken in but not yet flushed are never lost or hidden: a pause
 * publishes them before the ring is saved.
 */
class VirtioNetRxBatchTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    @RegisterExtension
    final RunningGuests guests = new RunningGuests();

    static long publishes(GuestNet g) {
        QueueCounters rx = g.device.queueCounters(VirtioNetModel.RX0);
        return rx.notificationsSent() + rx.notificationsSuppressed();
    }

    @Test
    void aTxBatchOfThirtyTwoFramesIsPublishedOnThePeersRxRingOnce() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = guests.in(c), b = guests.in(c);
        a.send(frame(b.mac(), a.mac(), 60, 0), GuestNet.TxLayout.ONE);
        assertThat(b.receive(1, WAIT)).hasSize(1);
        a.drainTx(WAIT);
        long before = publishes(b);

        int n = 32;
        a.device.pause();                                  // the batch is all there when the worker looks again
        for (int i = 1; i <= n; i++) a.send(frame(b.mac(), a.mac(), 60 + i, i), GuestNet.TxLayout.values()[i % 3]);
        a.device.resume();

        List<GuestNet.Rx> got = b.receive(n, WAIT);
        assertThat(got).hasSize(n).allSatisfy(r -> assertThat(Frames.intact(r.frame())).isTrue());
        assertThat(got.stream().map(r -> Frames.seq(r.frame())).toList()).isSorted().startsWith(1).endsWith(n);
        assertThat(publishes(b) - before).as("used-index publications on b's rx ring for one tx batch of " + n).isEqualTo(1);
    }

    /** A port on {@code c}'s default network that only sends (what it is sent is dropped), to drive a batch by hand. */
    static SwitchPort testSender(Container c) {
        return Networks.of(c).require("default").join(new NetPort() {
            @Override public String name() { return "test-sender"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) { return null; }
        });
    }

    /** Fills the 12 header bytes of each of {@code g}'s rx buffers with a pattern no device writes. */
    static void scribbleRxHeaders(GuestNet g) {
        for (int s = 0; s < 256; s++) g.mem.segment().asSlice(GuestNet.RX_BUFFERS + (long) s * g.rxBufLen, 12).fill((byte) 0xab);
    }

    /** The rx buffers (of slots 0..255) whose header still holds the pattern: none the device wrote. */
    static long scribbledRxHeaders(GuestNet g) {
        long n = 0;
        for (int s = 0; s < 256; s++) {
            byte[] h = g.mem.segment().asSlice(GuestNet.RX_BUFFERS + (long) s * g.rxBufLen, 12).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            boolean all = true;
            for (byte x : h) all &= x == (byte) 0xab;
            if (all) n++;
        }
        return n;
    }

    /**
     * A receiver writes a batch's rx headers when it publishes the batch, all together (a partial-line store per frame
     * into lines the driver's core owns held back every later store of the delivery: issue 18, session 11), and every
     * header is in place before the used index that hands the frames over: more frames than it holds headers for
     * (the rest written at once), the whole header (num_buffers 1, nothing else set), the frames whole and in order.
     */
    @Test
    void aBatchsHeadersAreWrittenWhenItIsPublishedAndEveryFrameHasItsHeader() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet b = guests.in(c);
        long src = MacAddress.parse("02:00:00:00:77:02");
        SwitchPort sender = testSender(c);
        try {
            scribbleRxHeaders(b);
            SendBatch batch = new SendBatch();
            int n = RxHeaders.CAPACITY + 36;   // beyond what it holds: those are written at once
            for (int i = 1; i <= n; i++) {
                byte[] f = frame(b.mac(), src, 60 + i % 40, i);
                sender.send(MemorySegment.ofArray(f), 0, f.length, new FrameMeta(batch));
            }
            assertThat(b.poll()).as("taken into the ring, not yet published").isNull();
            assertThat(scribbledRxHeaders(b)).as("rx buffers whose header is not written yet: the ones held, and the 256 - " + n + " unused")
                    .isEqualTo(256 - n + RxHeaders.CAPACITY);
            batch.flush();
            assertThat(scribbledRxHeaders(b)).as("after the flush only the unused buffers").isEqualTo(256 - n);
            List<GuestNet.Rx> got = b.receive(n, WAIT);
            assertThat(got).hasSize(n).allSatisfy(r -> {
                assertThat(Frames.intact(r.frame())).isTrue();
                assertThat(r.numBuffers()).isEqualTo(1);
                assertThat(List.of(r.flags(), r.gsoType(), r.gsoSize(), r.csumStart(), r.csumOffset())).containsOnly(0);
            });
            assertThat(got.stream().map(r -> Frames.seq(r.frame())).toList()).isSorted().startsWith(1).endsWith(n);
        } finally {
            sender.leave();
        }
    }

    @Test
    void framesABatchTookInAreHiddenUntilItsFlushAndAPausePublishesThemBeforeTheRingIsSaved() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet b = guests.in(c);
        long src = MacAddress.parse("02:00:00:00:77:01");
        SwitchPort sender = testSender(c);
        try {
            SendBatch batch = new SendBatch();
            byte[] f1 = frame(b.mac(), src, 100, 1);
            sender.send(MemorySegment.ofArray(f1), 0, f1.length, new FrameMeta(batch));
            assertThat(b.poll()).as("taken into the ring, not yet published").isNull();
            batch.flush();
            GuestNet.Rx r1 = b.poll();
            assertThat(r1).isNotNull();
            assertThat(Frames.seq(r1.frame())).isEqualTo(1);

            scribbleRxHeaders(b);
            byte[] f2 = frame(b.mac(), src, 100, 2);
            sender.send(MemorySegment.ofArray(f2), 0, f2.length, new FrameMeta(batch));
            b.device.pause();     // the sender has not flushed: the pause publishes it, so the saved ring has it
            GuestNet.Rx r2 = b.poll();
            assertThat(r2).as("published by the pause").isNotNull();
            assertThat(Frames.seq(r2.frame())).isEqualTo(2);
            assertThat(r2.numBuffers()).as("its header, written by the pause's publication").isEqualTo(1);
            assertThat(r2.flags()).isZero();
            b.device.resume();
            batch.flush();        // late flush after the pause: nothing left to publish, nothing published twice
            assertThat(b.poll()).isNull();
        } finally {
            sender.leave();
        }
    }
}
