package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.vhostuser.StreamGuest.MEM;
import static dev.jvbus.connector.vhostuser.StreamGuest.QSIZE;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_AVAIL;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_DESC;
import static dev.jvbus.connector.vhostuser.StreamGuest.RX_USED;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_AVAIL;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_DESC;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_USED;
import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.net.MacAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 11, point 3: a vhost-user message about ring N touches ring N only. Device A (virtio-net) is
 * served over vhost-user to a front-end in this test (a real socket, a real memfd as guest memory,
 * real eventfds); device B is its peer on the switch, driven through an {@link Attachment}, and
 * streams numbered frames into A's ring 0 (rx) while the front-end changes ring 1 (tx) or the memory
 * table. Every frame B sends must arrive, in order: B never has more frames out than A's ring 0 has
 * buffers to spare ({@link StreamGuest}'s window), so a missing number is a frame the bus lost.
 */
class PerRingMessagesTest extends TwoDeviceStream {
    @Test
    void aNewCallFdForRingOneWhileRingZeroStreamsLosesNoFrameNeverStopsRingZeroAndIsTheOneSignalled() throws Exception {
        guestB.sendLimit = Integer.MAX_VALUE;   // B streams until told to finish
        await(() -> guestA.received >= 2_000, "B's frames stream into A's ring 0");
        Device.DataPathEvents before = a.dataPathEvents();
        UsedIndexSampler rx = new UsedIndexSampler(guestA, RX_USED).start();
        // Sampling before the message goes out, and on after it: on a loaded machine the sampler's thread may not
        // run at all for a while (a run beside ten busy loops once saw no move in the whole window).
        await(() -> rx.moves() > 0, "the sampler sees ring 0's used index move");
        long receivedAtSend = guestA.received;

        try (EventFd newCall = EventFd.create()) {
            fe.sendU64NeedReply(Request.SET_VRING_CALL, 1, newCall.fd());
            assertThat(fe.replyU64(Request.SET_VRING_CALL)).as("SET_VRING_CALL accepted").isZero();
            long movesAtReply = rx.moves();
            await(() -> guestA.received >= receivedAtSend + 2_000 && rx.moves() > movesAtReply,
                    "ring 0 goes on receiving after the message, sampled");
            rx.stopAndCheckMonotonic();
            assertThat(a.dataPathEvents()).as("nothing stopped, paused or restarted: the call fd was swapped in place")
                    .isEqualTo(new Device.DataPathEvents(before.starts(), before.stops(), before.pauses(), before.queueStops(),
                            before.queueStarts(), before.callsReplaced() + 1));
            finishStream(guestB, guestA);

            // Ring 1 (tx) now signals the new call fd, and never the old one.
            guestA.txCall.drain();
            newCall.drain();
            guestA.sendLimit = 200;
            await(() -> guestB.received == 200, "A's tx frames reach B");
            await(() -> newCall.drain() > 0, "ring 1's used buffers signal the new call fd");
            assertThat(guestA.txCall.drain()).as("the old call fd is not signalled any more").isZero();
            assertThat(guestB.gap).isNull();
        }
        assertNoFailures();
    }

    @Test
    void getVringBaseForRingOneWhileRingZeroStreamsStopsOnlyRingOneWhichRestartsFromItsBaseLosingNothing() throws Exception {
        guestB.sendLimit = Integer.MAX_VALUE;
        guestA.sendLimit = 500;
        await(() -> guestB.received == 500 && guestA.received >= 1_000, "frames flow both ways");
        Device.DataPathEvents before = a.dataPathEvents();
        guestA.sendLimit = 1_500;   // A keeps offering tx buffers, before and while ring 1 is stopped
        try (SessionLines lines = SessionLines.record()) {
            int base = fe.getVringBase(1);
            assertThat(a.isQueueRunning(1)).isFalse();
            assertThat(a.isQueueRunning(0)).as("ring 0 runs on").isTrue();
            int txUsedAtStop = guestA.usedIdx(TX_USED);
            assertThat(base).as("the base is the next buffer ring 1 would have taken: all before it are used").isEqualTo(txUsedAtStop);
            assertThat(lines.matching("GET_VRING_BASE")).as("the operator reads where the ring stopped")
                    .singleElement().asString().contains("ring 1 stopped at " + base + " (used index " + base + ", 0 in flight); dirty log off");
            long receivedAtStop = guestA.received;
            await(() -> guestA.received >= receivedAtStop + 2_000, "ring 0 keeps receiving while ring 1 is stopped");
            assertThat(guestA.usedIdx(TX_USED)).as("a stopped ring 1 takes nothing").isEqualTo(txUsedAtStop);

            restartRingOne(base);
            // Waited for, not read at once: ring 1 may have taken all 1,500 before the stop, and then the wait for
            // them returns before the session has handled the restart's kick.
            await(() -> !lines.matching("carries on").isEmpty(), "the session logs where ring 1 carries on");
            assertThat(lines.matching("carries on")).as("and where it carried on")
                    .singleElement().asString().endsWith(": ring 1 carries on from base " + base + " (used index " + base + " in memory, 0 in flight)");
        }
        assertThat(guestB.gap).as("ring 1 lost nothing and repeated nothing").isNull();
        finishStream(guestB, guestA);
        assertThat(a.dataPathEvents()).as("only ring 1 was stopped and started; the device never stopped or paused as a whole")
                .isEqualTo(new Device.DataPathEvents(before.starts(), before.stops(), before.pauses(), before.queueStops() + 1,
                        before.queueStarts() + 1, before.callsReplaced()));
        assertNoFailures();
    }

    @Test
    void getVringBaseWhileAnOperatorHasTheDevicePausedStopsTheRingAtItsPausedPositionAndTheResumeLeavesItStopped() throws Exception {
        guestB.sendLimit = 1_000;
        guestA.sendLimit = 500;
        // Both streams come to rest first: a pause drops what arrives for A meanwhile, and B's stream loses nothing.
        await(() -> guestB.received == 500 && guestA.received == 1_000, "frames flow both ways, then stop");
        a.pause();   // an operator's snapshot: the session's GET_VRING_BASE lands inside it
        int txUsedAtPause = guestA.usedIdx(TX_USED);
        guestA.sendLimit = 1_500;   // A offers more tx buffers: none may be taken once ring 1 is stopped

        int base = fe.getVringBase(1);
        assertThat(base).as("the base is where ring 1 stood when paused, not the base it started from").isEqualTo(txUsedAtPause);
        assertThat(a.isQueueRunning(1)).isFalse();

        a.resume();
        guestB.sendLimit = 3_000;
        await(() -> guestA.received == 3_000 || guestA.gap != null, "ring 0 runs on after the resume");
        assertThat(guestA.gap).as("ring 0 lost nothing").isNull();
        assertThat(a.isQueueRunning(1)).as("the resume does not restart a ring its front-end stopped").isFalse();
        assertThat(guestA.usedIdx(TX_USED)).as("a stopped ring 1 takes nothing").isEqualTo(txUsedAtPause);

        restartRingOne(base);
        assertThat(guestB.gap).as("ring 1 lost nothing and repeated nothing").isNull();
        finishStream(guestB, guestA);
        assertNoFailures();
    }

    /** Ring 1 (tx) started again from {@code base}, until A's 1,500 frames reached B (or one is missing). */
    private void restartRingOne(int base) throws InterruptedException {
        fe.sendState(Request.SET_VRING_BASE, 1, base);
        fe.sendU64(Request.SET_VRING_KICK, 1, guestA.txKick.fd());
        await(() -> guestB.received == 1_500 || guestB.gap != null, "every tx frame A offered reached B after the restart");
    }

    @Test
    void aMemoryTableThatLeavesTheRingsWhereTheyWereKeepsTheirPositionsAndDoesNotRenegotiate() throws Exception {
        guestB.sendLimit = 3_000;
        guestA.sendLimit = 300;
        await(() -> guestA.received == 3_000 && guestB.received == 300, "frames flowed both ways");
        int rxUsed = guestA.usedIdx(RX_USED), txUsed = guestA.usedIdx(TX_USED);
        Device.DataPathEvents before = a.dataPathEvents();
        long negotiated = a.features().negotiated();

        ByteBuffer table = Codec.payload(8 + 32).putInt(1).putInt(0).putLong(0).putLong(MEM).putLong(USER_BASE).putLong(0).flip();
        fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, table, guestA.mem.fd());
        assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("new memory table accepted").isZero();

        assertThat(a.dataPathEvents()).as("each ring stopped and started alone; no whole-device stop, start or pause")
                .isEqualTo(new Device.DataPathEvents(before.starts(), before.stops(), before.pauses(), before.queueStops() + 2,
                        before.queueStarts() + 2, before.callsReplaced()));
        assertThat(a.status().isLive()).isTrue();
        assertThat(a.features().negotiated()).isEqualTo(negotiated);
        assertThat(guestA.usedIdx(RX_USED)).as("rx carries on from its position (a fresh ring would start at 0)").isEqualTo(rxUsed);
        assertThat(guestA.usedIdx(TX_USED)).isEqualTo(txUsed);

        guestB.sendLimit = 6_000;
        guestA.sendLimit = 600;
        await(() -> (guestA.received == 6_000 && guestB.received == 600) || guestA.gap != null || guestB.gap != null,
                "frames flow both ways over the new table");
        assertThat(guestA.gap).isNull();
        assertThat(guestB.gap).isNull();
        assertThat(guestA.usedIdx(RX_USED)).as("the rx buffers posted before the change were used after it, in order").isEqualTo(6_000);
        assertNoFailures();
    }
}
