package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.testing.OffloadFrames;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameOffload;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * When the driver gets its tx buffers back (issue 18, bench-guest): Linux frees a tx skb only when its buffer comes
 * back used, and TCP small queues stall a socket whose bytes are not freed, so a super-frame is completed (used index
 * published, notify decision made) as soon as it is sent, not when the rest of its batch has been sent too.
 */
class VirtioNetTxCompletionTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    final List<GuestNet> guests = new ArrayList<>();

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    /** A receiver that takes super-frames whole and holds its {@code holdAt}-th delivery until released. */
    static final class HoldingReceiver implements NetPort {
        final int holdAt;
        final AtomicInteger delivered = new AtomicInteger();
        final CountDownLatch holding = new CountDownLatch(1), release = new CountDownLatch(1);

        HoldingReceiver(int holdAt) { this.holdAt = holdAt; }

        @Override public String name() { return "holding-receiver"; }

        @Override public int offloadsTaken() { return FrameOffload.TAKES_ALL; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            if (delivered.incrementAndGet() == holdAt) {
                holding.countDown();
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return null;
        }
    }

    @Test
    void aSuperFrameIsCompletedToTheDriverBeforeTheNextFrameOfItsBatchIsSent() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet a = new GuestNet(c.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(a);
        a.negotiate(-1L).start().postRx(256);
        HoldingReceiver r = new HoldingReceiver(2);
        SwitchPort rp = Networks.of(c).require("default").join(r);
        try {
            OffloadFrames f = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 21);
            byte[] frame = VirtioNetOffloadTest.from(a, f);
            a.device.pause();                                  // the three are all there when the worker looks: one batch
            for (int i = 0; i < 3; i++) VirtioNetOffloadTest.send(a, f, frame, f.csumStart());
            a.device.resume();

            assertThat(r.holding.await(20, TimeUnit.SECONDS)).as("the worker is in the batch's second delivery").isTrue();
            a.reclaimTx();
            assertThat(a.txCompleted).as("super-frames the driver has back while the batch's second frame is being sent").isEqualTo(1);

            r.release.countDown();
            a.drainTx(WAIT);
            assertThat(a.txCompleted).isEqualTo(3);
            assertThat(r.delivered.get()).isEqualTo(3);
        } finally {
            r.release.countDown();
            rp.leave();
        }
    }
}
