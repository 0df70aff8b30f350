package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.testing.StuckDoorbell;
import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class L2SwitchTest {
    private final Arena arena = Arena.ofShared();
    private final L2Switch sw = new L2Switch("lan");

    static final long A = MacAddress.parse("02:00:00:00:00:0a");
    static final long B = MacAddress.parse("02:00:00:00:00:0b");
    static final long C = MacAddress.parse("02:00:00:00:00:0c");

    /** A backend that keeps copies of what it got, or refuses like a ring without rx buffers. */
    static class Recorder implements NetPort {
        final String name;
        final List<byte[]> frames = new ArrayList<>();
        volatile boolean full;

        Recorder(String name) { this.name = name; }

        @Override public String name() { return name; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            if (full) return DropReason.NO_RX_BUFFER;
            frames.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            return null;
        }
    }

    MemorySegment frame(long dst, long src, int length, int seq) {
        MemorySegment f = arena.allocate(length);
        MacAddress.write(f, 0, dst);
        MacAddress.write(f, 6, src);
        if (length >= 18) f.set(ValueLayout.JAVA_INT_UNALIGNED, 14, seq);
        return f;
    }

    @AfterEach
    void close() {
        arena.close();
    }

    /** A backend that counts its deliveries and flushes, and what was delivered when each flush came. */
    static final class FlushCounter extends Recorder {
        final List<Integer> deliveredAtFlush = new ArrayList<>();

        FlushCounter(String name) { super(name); }

        @Override public int flush() { deliveredAtFlush.add(frames.size()); return 0; }
    }

    /**
     * The switch reads a frame's two addresses with two loads (see forward): addresses with every high bit that a
     * sign extension or a shift off by a byte would spoil, at an odd offset in their segment, are still each
     * other's: the source passes its port's spoof check and is learned, the destination reaches its port alone.
     */
    @Test
    void addressesWithHighBitsEverywhereAreReadWholeFromAFrameAtAnOddOffset() {
        long x = MacAddress.parse("fe:ff:ff:ff:ff:fe"), y = MacAddress.parse("fc:80:ff:81:ff:80");
        Recorder rx = new Recorder("x"), ry = new Recorder("y"), rz = new Recorder("z");
        SwitchPort px = sw.join(rx, x);
        SwitchPort py = sw.join(ry, y);
        sw.join(rz);
        MemorySegment f = arena.allocate(61);
        MacAddress.write(f, 1, y);
        MacAddress.write(f, 7, x);
        px.send(f, 1, 60);
        MacAddress.write(f, 1, x);
        MacAddress.write(f, 7, y);
        py.send(f, 1, 60);
        assertThat(ry.frames).as("x to y").hasSize(1);
        assertThat(rx.frames).as("y to x").hasSize(1);
        assertThat(rz.frames).as("nothing flooded: both destinations known").isEmpty();
        assertThat(px.dropped(DropReason.SPOOFED_SOURCE) + py.dropped(DropReason.SPOOFED_SOURCE)).isZero();
        assertThat(sw.macTable()).containsEntry("fe:ff:ff:ff:ff:fe", "x").containsEntry("fc:80:ff:81:ff:80", "y");
    }

    @Test
    void aSendersBatchFlushesEachReceiverOnceAtItsEndWhileAnUnbatchedSendFlushesAfterEachFrame() {
        FlushCounter rb = new FlushCounter("b"), rc = new FlushCounter("c");
        SwitchPort pa = sw.join(new Recorder("a"), A);
        sw.join(rb, B);
        sw.join(rc, C);
        SendBatch batch = new SendBatch();
        for (int i = 0; i < 5; i++) pa.send(frame(B, A, 60, i), 0, 60, new FrameMeta(batch));
        pa.send(frame(MacAddress.BROADCAST, A, 60, 5), 0, 60, new FrameMeta(batch));
        assertThat(rb.frames).hasSize(6);
        assertThat(rc.frames).hasSize(1);
        assertThat(rb.deliveredAtFlush).as("nothing flushed inside the batch").isEmpty();
        assertThat(rc.deliveredAtFlush).isEmpty();
        assertThat(batch.pending()).isEqualTo(2);
        batch.flush();
        assertThat(rb.deliveredAtFlush).containsExactly(6);
        assertThat(rc.deliveredAtFlush).containsExactly(1);
        batch.flush();                                       // an empty batch flushes nobody
        assertThat(rb.deliveredAtFlush).containsExactly(6);

        pa.send(frame(B, A, 60, 7), 0, 60);                  // no batch: published at once
        pa.send(frame(B, A, 60, 8), 0, 60);
        assertThat(rb.deliveredAtFlush).containsExactly(6, 7, 8);
    }

    /**
     * A run of frames from one sender's batch to one port takes that port's delivery lock once, not once per frame
     * (a CAS per frame was a cost the switch paid and OVS does not); the flush at the batch's end uses that hold.
     * Going on to another port gives the lock back first.
     */
    @Test
    void aBatchTakesAReceivingPortsLockOncePerRunOfFramesToIt() {
        FlushCounter rb = new FlushCounter("b"), rc = new FlushCounter("c");
        SwitchPort pa = sw.join(new Recorder("a"), A);
        SwitchPort pb = sw.join(rb, B), pc = sw.join(rc, C);
        SendBatch batch = new SendBatch();
        long b0 = pb.holdsTaken(), c0 = pc.holdsTaken();
        for (int i = 0; i < 10; i++) pa.send(frame(B, A, 60, i), 0, 60, new FrameMeta(batch));
        assertThat(pb.holdsTaken()).as("still held: the run goes on").isEqualTo(b0);
        for (int i = 10; i < 15; i++) pa.send(frame(C, A, 60, i), 0, 60, new FrameMeta(batch));
        assertThat(pb.holdsTaken()).as("given back when the batch went on to c").isEqualTo(b0 + 1);
        batch.flush();
        // b is flushed first (the order the frames went out), so c's run hold is given back before b's lock is taken
        // (never two at once) and c's flush takes it again
        assertThat(pc.holdsTaken()).as("c: one hold for its run, one for its flush").isEqualTo(c0 + 2);
        assertThat(pb.holdsTaken()).as("b's flush takes the lock again (its run's hold was given back)").isEqualTo(b0 + 2);
        assertThat(rb.frames).hasSize(10);
        assertThat(rc.frames).hasSize(5);
        assertThat(rb.deliveredAtFlush).containsExactly(10);
        assertThat(rc.deliveredAtFlush).containsExactly(5);
        pa.send(frame(B, A, 60, 15), 0, 60);                 // no batch: a hold per frame, as before
        assertThat(pb.holdsTaken()).isEqualTo(b0 + 3);
    }

    /** A backend that puts off the copy of each frame that stays, as virtio-net does, and makes it at the run's end. */
    static final class DeferringPort extends Recorder {
        final List<MemorySegment> held = new ArrayList<>();
        final List<Long> heldAt = new ArrayList<>();
        final List<Integer> heldLength = new ArrayList<>();
        int runsEnded, stayingTaken, copiedAtOnce;

        DeferringPort(String name) { super(name); }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            copiedAtOnce++;
            return super.deliver(frame, offset, length);
        }

        @Override public DropReason deliverStaying(MemorySegment frame, long offset, int length, FrameOffload o, int origin) {
            stayingTaken++;
            held.add(frame);
            heldAt.add(offset);
            heldLength.add(length);
            return null;
        }

        @Override public int endRun() {
            runsEnded++;
            copyHeld();
            return 0;
        }

        @Override public int flush() { copyHeld(); return 0; }

        private void copyHeld() {
            for (int i = 0; i < held.size(); i++) super.deliver(held.get(i), heldAt.get(i), heldLength.get(i));
            held.clear();
            heldAt.clear();
            heldLength.clear();
        }
    }

    /**
     * A frame the sender says stays in its buffer until its batch's flush reaches the backend as such, and the backend
     * hears when the sender's run to it ends (the batch goes on to another port, or flushes), on the sender's thread,
     * before the port's lock is given back: the sender overwrites its buffer right after, and every frame still
     * arrives as sent. A frame that does not say so (or one sent without a batch) is delivered to be copied at once.
     */
    @Test
    void aStayingFramesBackendHearsTheEndOfTheSendersRunBeforeTheSenderReusesItsBuffer() {
        DeferringPort rb = new DeferringPort("b"), rc = new DeferringPort("c");
        SwitchPort pa = sw.join(new Recorder("a"), A);
        SwitchPort pb = sw.join(rb, B);
        sw.join(rc, C);
        SendBatch batch = new SendBatch();
        FrameMeta meta = new FrameMeta(batch).stays(true);
        MemorySegment[] buffers = new MemorySegment[3];   // a ring's tx buffers: each frame stays in its own
        for (int i = 0; i < 3; i++) {
            buffers[i] = frame(B, A, 60, i);
            pa.send(buffers[i], 0, 60, meta);
        }
        assertThat(rb.stayingTaken).isEqualTo(3);
        assertThat(rb.frames).as("nothing copied while b's run goes on").isEmpty();
        assertThat(rb.runsEnded).isZero();
        long b0 = pb.holdsTaken();

        pa.send(frame(C, A, 60, 100), 0, 60, meta);        // the batch goes on to c: b's run ends, on this thread
        assertThat(rb.runsEnded).as("b heard its run end before its lock went back").isEqualTo(1);
        assertThat(pb.holdsTaken()).isEqualTo(b0 + 1);
        for (MemorySegment b : buffers) b.fill((byte) 0xee);   // reused by the sender's driver (here: even before the flush)
        assertThat(rb.frames).hasSize(3);
        for (int i = 0; i < 3; i++) assertThat(rb.frames.get(i)[14]).as("b's frame %d as sent (its number's low byte)", i).isEqualTo((byte) i);
        batch.flush();
        assertThat(rc.frames).as("c's copy made by the batch's flush at the latest").hasSize(1);

        pa.send(frame(B, A, 60, 7), 0, 60, new FrameMeta(batch).stays(false));
        batch.flush();
        pa.send(frame(B, A, 60, 8), 0, 60);                  // no batch: nothing stays
        assertThat(rb.copiedAtOnce).as("frames not said to stay are delivered to be copied at once").isEqualTo(2);
        assertThat(rb.stayingTaken).isEqualTo(3);
        assertThat(new FrameMeta().stays(true).stays()).as("without a batch a frame cannot stay").isFalse();
    }

    /**
     * A backend that took a sender's frames and then lost them, because its own ring faulted while it made their
     * put-off copies (at the end of the sender's run) or published them (at the flush), says how many: the switch
     * counts each as a ring fault at that port, so a frame it counted as handed over is never lost uncounted.
     */
    @Test
    void framesABackendLosesAtTheEndOfARunOrAtItsFlushAreCountedAsRingFaultsAtItsPort() {
        int[] loseAtEndRun = {0}, loseAtFlush = {0};
        Recorder lossy = new Recorder("b") {
            @Override public DropReason deliverStaying(MemorySegment frame, long offset, int length, FrameOffload o, int origin) {
                return null;   // taken, copied later
            }
            @Override public int endRun() { return loseAtEndRun[0]; }
            @Override public int flush() { return loseAtFlush[0]; }
        };
        SwitchPort pa = sw.join(new Recorder("a"), A);
        SwitchPort pb = sw.join(lossy, B);
        sw.join(new Recorder("c"), C);
        SendBatch batch = new SendBatch();
        FrameMeta meta = new FrameMeta(batch).stays(true);

        for (int i = 0; i < 3; i++) pa.send(frame(B, A, 60, i), 0, 60, meta);
        loseAtEndRun[0] = 3;                                  // b's copies fault when the run ends
        pa.send(frame(C, A, 60, 9), 0, 60, meta);
        assertThat(pb.dropped(DropReason.RING_FAULT)).as("lost at the end of the run").isEqualTo(3);
        loseAtEndRun[0] = 0;
        batch.flush();
        assertThat(pb.dropped(DropReason.RING_FAULT)).isEqualTo(3);

        for (int i = 0; i < 4; i++) pa.send(frame(B, A, 60, i), 0, 60, meta);
        loseAtFlush[0] = 4;                                   // b's publication faults at the batch's flush
        batch.flush();
        assertThat(pb.dropped(DropReason.RING_FAULT)).as("lost at the flush too").isEqualTo(7);
        loseAtFlush[0] = 1;
        pa.send(frame(B, A, 60, 5), 0, 60);                   // no batch: flushed right after the delivery
        assertThat(pb.dropped(DropReason.RING_FAULT)).as("and at a lone delivery's flush").isEqualTo(8);
        assertThat(pb.stats().dropped(DropReason.RING_FAULT)).isEqualTo(8);
    }

    /**
     * The crossing of the test below, made to happen every time: X's batch has delivered to b then c and holds c's
     * lock, Y's has delivered to c then b and holds b's. A flush must give back the lock it holds before it takes
     * another port's: otherwise X would wait for b while holding c (and Y for c holding b), each until the stall
     * bound, and skip that port's publish.
     */
    @Test
    void flushesOfTwoBatchesHoldingEachOthersNextPortNeitherWaitNorSkipAPublish() throws Exception {
        L2Switch lan = new L2Switch("cross-flush", Duration.ofMillis(200));
        FlushCounter rb = new FlushCounter("b"), rc = new FlushCounter("c");
        long d = MacAddress.parse("02:00:00:00:00:0d");
        SwitchPort pa = lan.join(new Recorder("a"), A), pd = lan.join(new Recorder("d"), d);
        lan.join(rb, B);
        lan.join(rc, C);
        SendBatch x = new SendBatch(), y = new SendBatch();
        var tx = java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().unstarted(r));
        var ty = java.util.concurrent.Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().daemon().unstarted(r));
        try {
            ty.submit(() -> pd.send(frame(C, d, 60, 0), 0, 60, new FrameMeta(y))).get(60, TimeUnit.SECONDS);   // Y holds c
            tx.submit(() -> pa.send(frame(B, A, 60, 1), 0, 60, new FrameMeta(x))).get(60, TimeUnit.SECONDS);   // X holds b
            var yToB = ty.submit(() -> pd.send(frame(B, d, 60, 2), 0, 60, new FrameMeta(y)));   // Y gives c back, waits for b
            tx.submit(() -> pa.send(frame(C, A, 60, 3), 0, 60, new FrameMeta(x))).get(60, TimeUnit.SECONDS);   // X: b back, c taken
            yToB.get(60, TimeUnit.SECONDS);                                                      // Y got b
            assertThat(x.held).as("X holds c").isNotNull();
            assertThat(y.held).as("Y holds b").isNotNull().isNotSameAs(x.held);
            var fx = tx.submit(x::flush);
            var fy = ty.submit(y::flush);
            fx.get(60, TimeUnit.SECONDS);
            fy.get(60, TimeUnit.SECONDS);
        } finally {
            tx.shutdownNow();
            ty.shutdownNow();
        }
        assertThat(rb.frames).hasSize(2);
        assertThat(rc.frames).hasSize(2);
        assertThat(rb.deliveredAtFlush).as("b published by both batches' flushes, none skipped as stalled").hasSize(2).last().isEqualTo(2);
        assertThat(rc.deliveredAtFlush).as("c published by both batches' flushes, none skipped as stalled").hasSize(2).last().isEqualTo(2);
    }

    /**
     * Two senders whose batches go back and forth between the same two ports in opposite order: were a batch to
     * keep one port's lock while waiting for the other's, each would wait for the other (and, past the stall
     * bound, drop as PORT_STALLED). A batch holds at most one lock and gives it back before taking another.
     */
    @Test
    void twoBatchesCrossingBetweenTheSamePortsNeverWaitForEachOther() throws Exception {
        L2Switch lan = new L2Switch("cross", Duration.ofSeconds(30));
        Recorder rb = new Recorder("b"), rc = new Recorder("c");
        long d = MacAddress.parse("02:00:00:00:00:0d");
        SwitchPort pa = lan.join(new Recorder("a"), A), pd = lan.join(new Recorder("d"), d);
        SwitchPort pb = lan.join(rb, B), pc = lan.join(rc, C);
        int n = 100_000;
        MemorySegment ab = frame(B, A, 60, 0), ac = frame(C, A, 60, 0), db = frame(B, d, 60, 0), dc = frame(C, d, 60, 0);
        List<CompletableFuture<Void>> senders = List.of(
                CompletableFuture.runAsync(() -> crossing(pa, ab, ac, n), r -> Thread.ofPlatform().start(r)),
                CompletableFuture.runAsync(() -> crossing(pd, dc, db, n), r -> Thread.ofPlatform().start(r)));
        for (CompletableFuture<Void> f : senders) f.get(120, TimeUnit.SECONDS);
        assertThat(pb.stats().txFrames() + pc.stats().txFrames()).isEqualTo(2L * n);
        assertThat(pb.stats().drops()).isEmpty();
        assertThat(pc.stats().drops()).isEmpty();
        assertThat(rb.frames).hasSize(n);
        assertThat(rc.frames).hasSize(n);
    }

    /** Sends {@code n} frames, {@code first} and {@code second} in turn, in batches of 64 as a tx worker does. */
    private static void crossing(SwitchPort from, MemorySegment first, MemorySegment second, int n) {
        SendBatch batch = new SendBatch();
        for (int i = 0; i < n; i++) {
            from.send((i & 1) == 0 ? first : second, 0, 60, new FrameMeta(batch));
            if ((i & 63) == 63) batch.flush();
        }
        batch.flush();
    }

    @Test
    void aBatchFloodingMorePortsThanItTracksFlushesTheRestAtOnce() {
        SwitchPort pa = sw.join(new Recorder("a"), A);
        List<FlushCounter> rs = new ArrayList<>();
        for (int i = 0; i < SendBatch.MAX_PORTS + 3; i++) {
            FlushCounter r = new FlushCounter("r" + i);
            rs.add(r);
            sw.join(r);
        }
        SendBatch batch = new SendBatch();
        pa.send(frame(MacAddress.BROADCAST, A, 60, 1), 0, 60, new FrameMeta(batch));
        assertThat(rs.stream().filter(r -> r.deliveredAtFlush.isEmpty()).count()).isEqualTo(SendBatch.MAX_PORTS);
        batch.flush();
        assertThat(rs).allSatisfy(r -> assertThat(r.deliveredAtFlush).containsExactly(1));
    }

    @Test
    void unknownAndBroadcastFloodThenUnicastFollowsLearning() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b"), rc = new Recorder("c");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb), pc = sw.join(rc);

        pa.send(frame(B, A, 60, 1), 0, 60);                 // B unknown: flood to b and c
        assertThat(rb.frames).hasSize(1);
        assertThat(rc.frames).hasSize(1);
        pb.send(frame(A, B, 60, 2), 0, 60);                 // A learned on port a: unicast
        assertThat(ra.frames).hasSize(1);
        assertThat(rc.frames).hasSize(1);
        pa.send(frame(B, A, 1514, 3), 0, 1514);             // B learned now: unicast only
        assertThat(rb.frames).hasSize(2);
        assertThat(rb.frames.get(1)).hasSize(1514);
        assertThat(rc.frames).hasSize(1);
        pc.send(frame(MacAddress.BROADCAST, C, 60, 4), 0, 60);
        assertThat(ra.frames).hasSize(2);
        assertThat(rb.frames).hasSize(3);
        assertThat(rc.frames).hasSize(1);                   // never back to the sender

        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "a").containsEntry("02:00:00:00:00:0b", "b")
                .containsEntry("02:00:00:00:00:0c", "c");
        assertThat(pa.stats()).isEqualTo(new PortStats("a", 2, 60 + 1514, 2, 120, java.util.Map.of()));
        assertThat(pb.stats().txFrames()).isEqualTo(3);
        assertThat(pb.stats().txBytes()).isEqualTo(60 + 1514 + 60);
    }

    @Test
    void aReceiverWithoutBuffersDropsAndCounts() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb);
        pb.send(frame(A, B, 60, 0), 0, 60);  // learn B
        rb.full = true;
        for (int i = 0; i < 5; i++) pa.send(frame(B, A, 60, i), 0, 60);
        rb.full = false;
        pa.send(frame(B, A, 60, 5), 0, 60);
        assertThat(pb.stats().dropped(DropReason.NO_RX_BUFFER)).isEqualTo(5);
        assertThat(pb.stats().txFrames()).isEqualTo(1);
        assertThat(rb.frames).hasSize(1);
        assertThat(pa.stats().rxFrames()).isEqualTo(6);
    }

    @Test
    void runtsAndHairpinsAreCountedOnTheSender() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra);
        sw.join(rb);
        pa.send(frame(B, A, 13, 0), 0, 13);
        pa.send(frame(B, A, 60, 0), 0, 60); // learns A on port a
        pa.send(frame(A, A, 60, 0), 0, 60); // A -> A from a itself: a hairpin, never reflected
        assertThat(pa.stats().dropped(DropReason.RUNT)).isEqualTo(1);
        assertThat(pa.stats().dropped(DropReason.HAIRPIN)).isEqualTo(1);
        assertThat(ra.frames).isEmpty();
        assertThat(rb.frames).hasSize(1);
    }

    @Test
    void aMacThatMovesIsRelearned() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b"), rc = new Recorder("c");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb), pc = sw.join(rc);
        pb.send(frame(A, C, 60, 0), 0, 60);   // C seen on b
        pc.send(frame(A, C, 60, 0), 0, 60);   // C moved to c
        int atB = rb.frames.size(), atC = rc.frames.size();
        pa.send(frame(C, A, 60, 0), 0, 60);
        assertThat(rc.frames).hasSize(atC + 1);
        assertThat(rb.frames).hasSize(atB);
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0c", "c");
    }

    /**
     * A sender's run of frames between the same two stations reuses the last lookup (forward) only while the MAC
     * table is the one it was made under: each learning, move or leave in between is seen by the very next frame.
     */
    @Test
    void aStreamBetweenTwoStationsFollowsEveryChangeOfTheTableAtTheNextFrame() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b"), rc = new Recorder("c");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb), pc = sw.join(rc);
        SwitchPort.Sender sa = pa.sender();
        MemorySegment toB = frame(B, A, 60, 1);
        sa.send(toB, 0, 60, FrameMeta.BARE);
        sa.send(toB, 0, 60, FrameMeta.BARE);                                // B unknown: both flooded
        assertThat(rb.frames).hasSize(2);
        assertThat(rc.frames).hasSize(2);
        pb.send(frame(A, B, 60, 2), 0, 60);                 // B learned on b
        sa.send(toB, 0, 60, FrameMeta.BARE);
        assertThat(rb.frames).hasSize(3);
        assertThat(rc.frames).as("unicast from the first frame after B was learned").hasSize(2);
        pc.send(frame(A, B, 60, 3), 0, 60);                 // B moved to c
        sa.send(toB, 0, 60, FrameMeta.BARE);
        assertThat(rc.frames).hasSize(3);
        assertThat(rb.frames).hasSize(3);
        pb.send(frame(B, A, 60, 4), 0, 60);                 // A "moved" to b (another port sent from it; to B on c) ...
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "b");
        assertThat(rc.frames).hasSize(4);
        sa.send(toB, 0, 60, FrameMeta.BARE);                // ... and the stream from a learns it back at once
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "a");
        assertThat(rc.frames).hasSize(5);
        pc.leave();                                         // B's port left: flooded again, to b only
        sa.send(toB, 0, 60, FrameMeta.BARE);
        assertThat(rb.frames).hasSize(4);
        assertThat(rc.frames).hasSize(5);
        assertThat(pa.stats().rxFrames()).isEqualTo(6);
    }

    /**
     * A frame in memory FFM never closes travels as ({@link HostMemory#ALL}, host address): the switch reads its
     * addresses there and every receiver gets exactly its bytes.
     */
    @Test
    void aFrameGivenAtItsHostAddressIsSwitchedAndDeliveredWhole() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb);
        MemorySegment f = frame(B, A, 1514, 7);
        MemorySegment global = MemorySegment.ofAddress(f.address()).reinterpret(f.byteSize());   // as a peer's mapping is
        assertThat(HostMemory.isDirect(global)).isTrue();
        pa.send(HostMemory.ALL, global.address(), 1514);    // B unknown: flooded to b
        pb.send(frame(A, B, 60, 8), 0, 60);
        pa.send(HostMemory.ALL, global.address(), 1514);    // unicast now
        assertThat(rb.frames).hasSize(2);
        assertThat(rb.frames.get(1)).isEqualTo(f.toArray(ValueLayout.JAVA_BYTE));
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "a");
    }

    @Test
    void aPortThatLeftGetsNothingAndItsMacsAreForgotten() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra), pb = sw.join(rb);
        pb.send(frame(A, B, 60, 0), 0, 60);
        pb.leave();
        pa.send(frame(B, A, 60, 0), 0, 60);
        pa.send(frame(MacAddress.BROADCAST, A, 60, 0), 0, 60);
        assertThat(rb.frames).isEmpty();
        assertThat(sw.macTable()).doesNotContainKey("02:00:00:00:00:0b");
        assertThat(sw.ports()).containsExactly(pa);
    }

    @Test
    void theMacTableIsBoundedAgainstSpraying() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra);
        sw.join(rb);
        MemorySegment f = frame(B, A, 60, 0);
        for (long i = 1; i <= L2Switch.MAX_MACS + 100; i++) {
            MacAddress.write(f, 6, MacAddress.local(0x10000 + i));
            pa.send(f, 0, 60);
        }
        assertThat(sw.macTable()).hasSize(L2Switch.MAX_MACS);
        assertThat(rb.frames).hasSize(L2Switch.MAX_MACS + 100); // unknown B keeps flooding
    }

    @Test
    void aPortHeldToItsMacCannotTakeAnotherPortsTrafficBySendingFromItsMac() {
        Recorder victim = new Recorder("victim"), thief = new Recorder("thief"), peer = new Recorder("peer");
        SwitchPort pv = sw.join(victim, B), pt = sw.join(thief, A), pp = sw.join(peer, C);
        pv.send(frame(MacAddress.BROADCAST, B, 60, 0), 0, 60);   // the switch learns B on the victim's port
        int atPeer = peer.frames.size(), atThief = thief.frames.size();

        for (int i = 0; i < 5; i++) pt.send(frame(MacAddress.BROADCAST, B, 60, i), 0, 60);   // the thief claims B
        pt.send(frame(C, B, 60, 5), 0, 60);

        assertThat(pt.stats().dropped(DropReason.SPOOFED_SOURCE)).isEqualTo(6);
        assertThat(pt.stats().rxFrames()).as("refused at ingress, not taken in").isZero();
        assertThat(peer.frames).as("nothing the thief sent went anywhere").hasSize(atPeer);
        assertThat(victim.frames).isEmpty();
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0b", "victim").as("the thief has only its own").containsEntry("02:00:00:00:00:0a", "thief").hasSize(3);

        pp.send(frame(B, C, 60, 6), 0, 60);                      // the victim keeps its traffic
        assertThat(victim.frames).hasSize(1);
        assertThat(thief.frames).hasSize(atThief);
        pt.send(frame(C, A, 60, 7), 0, 60);                      // and the thief may still send as itself
        assertThat(peer.frames).hasSize(atPeer + 1);
        assertThat(pv.stats().dropped()).isZero();
        assertThat(pp.stats().dropped()).isZero();
    }

    @Test
    void aHeldPortMaySendFromNoGroupOrZeroSource() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra, A);
        sw.join(rb);
        long[] sources = {MacAddress.BROADCAST, MacAddress.parse("01:00:5e:00:00:01"), MacAddress.parse("33:33:00:00:00:01"),
                A | 0x0100_0000_0000L, 0};
        for (long src : sources) pa.send(frame(MacAddress.BROADCAST, src, 60, 0), 0, 60);
        assertThat(pa.stats().dropped(DropReason.SPOOFED_SOURCE)).isEqualTo(sources.length);
        assertThat(rb.frames).isEmpty();
        assertThat(sw.macTable()).as("only its own assigned MAC, nothing learned").containsExactly(java.util.Map.entry("02:00:00:00:00:0a", "a"));
    }

    @Test
    void aPortAssignedItsMacIsInTheTableFromTheStartAndKeepsItAgainstAPortThatSendsFromIt() {
        Recorder dev = new Recorder("dev"), tap = new Recorder("tap"), other = new Recorder("other");
        SwitchPort pd = sw.join(dev, A), pt = sw.join(tap), po = sw.join(other, C);
        assertThat(sw.macTable()).as("before either sent anything").containsEntry("02:00:00:00:00:0a", "dev")
                .containsEntry("02:00:00:00:00:0c", "other");
        assertThat(sw.info().macTable()).extracting(MacEntry::portId).contains(pd.id(), po.id());

        pt.send(frame(A, B, 60, 0), 0, 60);                   // unicast to A: to its port alone, not flooded
        assertThat(dev.frames).hasSize(1);
        assertThat(other.frames).isEmpty();

        pt.send(frame(MacAddress.BROADCAST, A, 60, 1), 0, 60); // a port free to send from any MAC claims A
        assertThat(sw.macTable()).as("an assigned MAC stays with its port").containsEntry("02:00:00:00:00:0a", "dev");
        po.send(frame(A, C, 60, 2), 0, 60);
        assertThat(dev.frames).hasSize(3);                     // the broadcast, then the unicast
        assertThat(tap.frames).isEmpty();

        pd.leave();
        assertThat(sw.macTable()).doesNotContainKey("02:00:00:00:00:0a");
    }

    @Test
    void aSecondPortAssignedTheSameMacTakesItOverOnlyWhenItSends() {
        Recorder source = new Recorder("source"), target = new Recorder("target"), peer = new Recorder("peer");
        SwitchPort ps = sw.join(source, A), pp = sw.join(peer, C);
        SwitchPort pt = sw.join(target, A);   // a migration's target, made while the source still runs
        assertThat(sw.macTable()).as("the guest is still behind the source").containsEntry("02:00:00:00:00:0a", "source");
        pp.send(frame(A, C, 60, 0), 0, 60);
        assertThat(source.frames).hasSize(1);
        assertThat(target.frames).isEmpty();

        pt.send(frame(C, A, 60, 1), 0, 60);   // the guest speaks from its new device
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "target");
        pp.send(frame(A, C, 60, 2), 0, 60);
        assertThat(target.frames).hasSize(1);
        assertThat(source.frames).hasSize(1);
        ps.leave();
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0a", "target");
    }

    @Test
    void aPortWithoutAnAssignedMacMaySendFromAnySourceAsBefore() {
        Recorder tap = new Recorder("tap"), dev = new Recorder("dev");
        SwitchPort pt = sw.join(tap), pd = sw.join(dev, A);
        assertThat(pt.assignedSource()).isEmpty();
        assertThat(pd.assignedSource()).hasValue(A);
        for (long src : new long[] {B, C, MacAddress.local(99)}) pt.send(frame(A, src, 60, 0), 0, 60);
        assertThat(dev.frames).hasSize(3);
        assertThat(pt.stats().dropped()).isZero();
        assertThat(sw.macTable()).containsEntry("02:00:00:00:00:0b", "tap").containsEntry("02:00:00:00:00:0c", "tap");
    }

    @Test
    void aPortCannotBeHeldToAGroupOrZeroMac() {
        Recorder r = new Recorder("r");
        for (long bad : new long[] {0, MacAddress.BROADCAST, MacAddress.parse("01:00:5e:00:00:01"), 1L << 48})
            assertThatThrownBy(() -> sw.join(r, bad))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must be a unicast address");
        assertThat(sw.ports()).isEmpty();
    }

    @Test
    void forwardingAllocatesNothingPerFrame() {
        MemorySegment sink = arena.allocate(1514);
        NetPort copier = new NetPort() {
            @Override public String name() { return "copier"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                MemorySegment.copy(frame, offset, sink, 0, length);   // what a device's rx does: one copy
                return null;
            }
        };
        SwitchPort in = sw.join(new Recorder("in"), A);   // held to its MAC: the source check runs on every frame
        SwitchPort out = sw.join(copier, B);
        out.send(frame(MacAddress.BROADCAST, B, 60, 0), 0, 60);          // learn B on the copier's port
        MemorySegment f = frame(B, A, 1514, 1);
        for (int i = 0; i < 20_000; i++) in.send(f, 0, 1514);              // warm-up
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 200_000; i++) in.send(f, 0, 1514);
        long bytes = mx.getCurrentThreadAllocatedBytes() - before;
        System.out.printf("L2Switch: %d bytes allocated forwarding 200000 frames%n", bytes);
        assertThat(out.stats().txFrames()).isEqualTo(220_000);
        assertThat(bytes).as("bytes allocated forwarding 200000 frames").isLessThan(16 * 1024);

        // The same through a sender's batch, flushed every 64 frames as a device's tx worker does.
        SendBatch batch = new SendBatch();
        FrameMeta meta = new FrameMeta(batch);
        before = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 200_000; i++) {
            in.send(f, 0, 1514, meta);
            if ((i & 63) == 63) batch.flush();
        }
        batch.flush();
        bytes = mx.getCurrentThreadAllocatedBytes() - before;
        System.out.printf("L2Switch: %d bytes allocated forwarding 200000 frames in batches%n", bytes);
        assertThat(out.stats().txFrames()).isEqualTo(420_000);
        assertThat(bytes).as("bytes allocated forwarding 200000 frames in batches").isLessThan(16 * 1024);
    }

    @Test
    void aPromiscuousPortGetsOthersUnicastAndAFilteringPortOnlyWhatItAskedFor() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b"), rc = new Recorder("c");
        SwitchPort pa = sw.join(ra, A), pb = sw.join(rb, B), pc = sw.join(rc, C);
        long mcast = MacAddress.parse("01:00:5e:00:00:01"), unknown = MacAddress.parse("02:00:00:00:00:99");
        pb.send(frame(C, B, 60, 1), 0, 60);
        assertThat(ra.frames).as("no filter set: C's unicast goes to C alone, as before").isEmpty();

        pa.rxFilter(RxFilter.of(A, true, false));
        pb.send(frame(C, B, 60, 2), 0, 60);
        assertThat(ra.frames).as("promiscuous: a copy of C's unicast").hasSize(1);
        assertThat(rc.frames).hasSize(2);

        pa.rxFilter(RxFilter.of(A, false, false));
        pb.send(frame(C, B, 60, 3), 0, 60);
        pb.send(frame(unknown, B, 60, 4), 0, 60);
        pb.send(frame(mcast, B, 60, 5), 0, 60);
        pb.send(frame(A, B, 60, 6), 0, 60);
        pb.send(frame(MacAddress.BROADCAST, B, 60, 7), 0, 60);
        assertThat(ra.frames).as("filtering: its own address and broadcast only").hasSize(3);
        assertThat(rc.frames).as("c (no filter) still gets the flooded ones").hasSize(6);

        pa.rxFilter(RxFilter.of(A, false, true));
        pb.send(frame(mcast, B, 60, 8), 0, 60);
        assertThat(ra.frames).as("all-multicast").hasSize(4);
        assertThat(pa.stats().drops()).as("filtered frames are not drops").isEmpty();
    }

    @Test
    void reassigningAPortsMacMovesItsTableEntryAndItsSpoofCheck() {
        Recorder ra = new Recorder("a"), rb = new Recorder("b");
        SwitchPort pa = sw.join(ra, A), pb = sw.join(rb, B);
        long moved = MacAddress.parse("02:00:00:00:00:aa");
        sw.reassign(pa, moved);
        assertThat(sw.macTable()).containsEntry(MacAddress.toString(moved), "a").doesNotContainKey(MacAddress.toString(A));
        pb.send(frame(moved, B, 60, 1), 0, 60);
        assertThat(ra.frames).hasSize(1);
        pa.send(frame(B, A, 60, 2), 0, 60);
        assertThat(pa.stats().dropped(DropReason.SPOOFED_SOURCE)).isEqualTo(1);
        pa.send(frame(B, moved, 60, 3), 0, 60);
        assertThat(rb.frames).hasSize(1);
        assertThatThrownBy(() -> sw.reassign(pa, B)).isInstanceOf(NetworkException.class).hasMessageContaining("assigned to b");
        assertThatThrownBy(() -> sw.reassign(pa, MacAddress.BROADCAST)).isInstanceOf(NetworkException.class);
    }

    @Test
    void forwardingAllocatesNothingPerFrameWithFiltersAndAPromiscuousPort() {
        MemorySegment sink = arena.allocate(1514);
        NetPort copier = new NetPort() {
            @Override public String name() { return "copier"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                MemorySegment.copy(frame, offset, sink, 0, length);
                return null;
            }
        };
        SwitchPort in = sw.join(new Recorder("in"), A);
        SwitchPort out = sw.join(copier, B);
        SwitchPort watcher = sw.join(copier, C);
        out.rxFilter(RxFilter.of(B, false, false));
        watcher.rxFilter(RxFilter.of(C, true, false));
        MemorySegment f = frame(B, A, 1514, 1), flood = frame(MacAddress.parse("01:00:5e:00:00:01"), A, 60, 2);
        for (int i = 0; i < 20_000; i++) {
            in.send(f, 0, 1514);
            in.send(flood, 0, 60);
        }
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 100_000; i++) {
            in.send(f, 0, 1514);
            in.send(flood, 0, 60);
        }
        long bytes = mx.getCurrentThreadAllocatedBytes() - before;
        assertThat(out.stats().txFrames()).as("its unicast, not the multicast it did not ask for").isEqualTo(120_000);
        assertThat(watcher.stats().txFrames()).as("promiscuous: both").isEqualTo(240_000);
        assertThat(bytes).as("bytes allocated forwarding 200000 frames through filters").isLessThan(16 * 1024);
    }

    @Test
    void countersStayExactWithConcurrentSendersToOnePort() throws Exception {
        int perSender = 200_000;
        long[] seen = new long[3];
        NetPort sink = new NetPort() {
            @Override public String name() { return "sink"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                seen[frame.get(ValueLayout.JAVA_BYTE, offset + 11)]++; // last byte of the source MAC says who
                return null;
            }
        };
        SwitchPort sinkPort = sw.join(sink);
        long sinkMac = MacAddress.parse("02:00:00:00:01:00");
        sinkPort.send(frame(MacAddress.BROADCAST, sinkMac, 60, 0), 0, 60); // learn the sink
        AtomicBoolean go = new AtomicBoolean();
        List<Thread> threads = new ArrayList<>();
        List<SwitchPort> senders = new ArrayList<>();
        for (int s = 0; s < 3; s++) {
            SwitchPort p = sw.join(new Recorder("s" + s));
            senders.add(p);
            MemorySegment f = frame(sinkMac, MacAddress.local(s), 64, 0);
            threads.add(Thread.ofPlatform().start(() -> {
                while (!go.get()) Thread.onSpinWait();
                for (int i = 0; i < perSender; i++) p.send(f, 0, 64);
            }));
        }
        go.set(true);
        for (Thread t : threads) t.join();
        assertThat(seen).containsExactly(perSender, perSender, perSender);
        assertThat(sinkPort.stats().txFrames()).isEqualTo(3L * perSender);
        assertThat(sinkPort.stats().txBytes()).isEqualTo(3L * perSender * 64);
        for (SwitchPort p : senders) assertThat(p.stats().rxFrames()).isEqualTo(perSender);
    }

    /** A receiver that copies the frame, then (once armed) rings its driver's doorbell, as a device's rx does. */
    static final class RingingReceiver implements NetPort {
        final StuckDoorbell doorbell;
        final List<byte[]> frames = new ArrayList<>();
        volatile boolean armed;

        RingingReceiver(StuckDoorbell doorbell) { this.doorbell = doorbell; }

        @Override public String name() { return "wedged"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            frames.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            if (armed) doorbell.signal();
            return null;
        }
    }

    /** Runs {@code body} on a platform thread of its own; the test waits for it with a deadline, never for ever. */
    static CompletableFuture<Void> onThread(String name, Runnable body) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name(name).start(() -> {
            try {
                body.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        return done;
    }

    @Test
    void aReceiverStuckInItsDeliveryCostsItsOtherSendersCountedDropsNotAWait() throws Exception {
        L2Switch lan = new L2Switch("lan-stall", Duration.ofMillis(200));
        try (StuckDoorbell doorbell = new StuckDoorbell()) {
            RingingReceiver wedged = new RingingReceiver(doorbell);
            Recorder healthy = new Recorder("healthy");
            SwitchPort pw = lan.join(wedged), ph = lan.join(healthy);
            SwitchPort first = lan.join(new Recorder("first")), second = lan.join(new Recorder("second"));
            pw.send(frame(MacAddress.BROADCAST, B, 60, 0), 0, 60);     // learn the wedged port's MAC
            ph.send(frame(MacAddress.BROADCAST, C, 60, 0), 0, 60);     // and the healthy one's
            int atHealthy = healthy.frames.size();
            wedged.armed = true;

            // The first sender's frame gets into the wedged port and stays there: its doorbell never returns.
            MemorySegment toWedged = frame(B, A, 60, 1);
            CompletableFuture<Void> stuckSender = onThread("stuck-sender", () -> first.send(toWedged, 0, 60));
            assertThat(doorbell.awaitStuck(Duration.ofSeconds(20))).as("the first sender is stuck in the wedged port").isTrue();

            // Another sender to the wedged port drops, counted, and goes on to the healthy port.
            MemorySegment unicast = frame(B, MacAddress.local(0x77), 60, 2), other = frame(C, MacAddress.local(0x77), 60, 3);
            MemorySegment broadcast = frame(MacAddress.BROADCAST, MacAddress.local(0x77), 60, 4);
            CompletableFuture<Void> secondSender = onThread("second-sender", () -> {
                for (int i = 0; i < 5; i++) {
                    second.send(unicast, 0, 60);
                    second.send(other, 0, 60);
                    second.send(broadcast, 0, 60);
                }
            });
            secondSender.get(30, TimeUnit.SECONDS);
            assertThat(pw.stats().dropped(DropReason.PORT_STALLED)).as("unicasts and broadcasts at the wedged port").isEqualTo(10);
            assertThat(healthy.frames).as("the healthy port got every unicast and broadcast meant for it").hasSize(atHealthy + 10);
            assertThat(stuckSender).isNotDone();

            // The wedged port leaves within its bound, saying the delivery inside is stuck.
            assertThat(onThread("leave", () -> assertThat(pw.leave()).isFalse())).succeedsWithin(Duration.ofSeconds(30));
            assertThat(lan.ports()).doesNotContain(pw);

            doorbell.release();
            stuckSender.get(30, TimeUnit.SECONDS);
            assertThat(wedged.frames).as("only the frame that got in before the wedge").hasSize(2);
            second.send(unicast, 0, 60);                               // a port that left takes nothing, stuck or not
            assertThat(wedged.frames).hasSize(2);
        }
    }
}
