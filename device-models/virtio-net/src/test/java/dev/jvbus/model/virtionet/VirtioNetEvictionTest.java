package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.memory.CacheLines;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The tx worker evicts the descriptor lines it read, and the frames' first lines where that pays ({@link CacheLines},
 * chosen by {@link EvictChoice} or fixed by the operator's {@code evict}), in a front-end's memory as vhost-user maps it
 * (a file of the front-end's, mapped in the global scope). A front-end that truncates that file between our read of a
 * descriptor or a frame and its eviction makes the flush fault: the device needs a reset with that as its reason, the
 * frame it had taken is delivered, and the bus serves everyone else.
 */
class VirtioNetEvictionTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final long PEER_MAC = MacAddress.parse("02:00:00:00:ee:01");

    @RegisterExtension
    final RunningGuests guests = new RunningGuests();

    @BeforeAll
    static void evictionAvailable() {
        assumeTrue(CacheLines.available(), "no cache-line eviction on this machine: " + CacheLines.unavailableBecause());
    }

    /** A port on the switch that records what reaches it, and may run something on the sender's thread as it does. */
    private static final class Peer implements NetPort {
        final List<byte[]> frames = new CopyOnWriteArrayList<>();
        volatile Runnable onDelivery = () -> { };

        /** A peer on {@code c}'s default switch at {@link #PEER_MAC}. */
        static Peer on(Container c) {
            Peer peer = new Peer();
            Networks.of(c).getOrCreate("default").join(peer, PEER_MAC);
            return peer;
        }

        @Override public String name() { return "eviction-peer"; }

        @Override
        public DropReason deliver(MemorySegment frame, long offset, int length) {
            frames.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            onDelivery.run();
            return null;
        }
    }

    /** A front-end's guest: its memory a file it keeps its own fd of, mapped as a connector maps it (direct). */
    private record FrontEnd(OwnedFd file, GuestNet guest) implements AutoCloseable {
        static FrontEnd in(Container c) {
            return in(c, Map.of());
        }

        /** With the device's {@code params}. */
        static FrontEnd in(Container c, Map<String, String> params) {
            OwnedFd file = HostileFds.memfd("front-end", GuestNet.MEMORY, 0);
            Memfd mapped = Memfd.adopt(OwnedFd.duplicate(file.number()), 0, GuestNet.MEMORY, MappingRule.SHARED_FILE);
            return new FrontEnd(file, new GuestNet(c.addDevice(VirtioNetModel.TYPE, -1L, params), 256, mapped, true));
        }

        @Override
        public void close() {
            guest.close();
            file.close();
        }
    }

    @Test
    void theTxQueueEvictsItsDescriptorLinesAndTheFramesArriveIntact() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        Peer peer = Peer.on(c);
        try (FrontEnd fe = FrontEnd.in(c)) {
            GuestNet g = fe.guest();
            g.negotiate(-1L).start().postRx(256);
            // A probe starts with eviction on: the first batches evict whatever the rates turn out to be.
            for (int i = 0; i < 32; i++) g.send(frame(PEER_MAC, g.mac(), 60 + i, i), GuestNet.TxLayout.ONE);
            await(() -> peer.frames.size() == 32, "32 frames at the peer");
            for (int i = 0; i < 32; i++) assertThat(Frames.seq(peer.frames.get(i))).isEqualTo(i);
            assertThat(peer.frames).allSatisfy(f -> assertThat(Frames.intact(f)).isTrue());
            // Waited for: the worker evicts after it publishes the batch, and the peer has the frames before that.
            await(() -> g.device.queueCounters(VirtioNetModel.TX0).linesEvicted() > 0, "descriptor lines evicted");
            assertThat(g.device.needsResetReason()).isEmpty();
        }
    }

    @Test
    void aFrontEndThatTruncatesItsDescriptorTableBeforeTheEvictionFaultsItsOwnDeviceOnly() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        Peer peer = Peer.on(c);
        GuestNet other = guests.in(c);
        try (FrontEnd fe = FrontEnd.in(c)) {
            GuestNet g = fe.guest();
            // The descriptor table in the file's last page, above everything else the queue touches: cutting that page
            // off leaves the used ring and the frame's buffer in place, so that the eviction is the first access to fault.
            long lastPage = GuestNet.MEMORY - 0x1000;
            g.txDesc = GuestNet.G + lastPage;
            g.negotiate(-1L).start().postRx(256);
            // The front-end truncates as the frame is delivered: after our worker read the descriptor, before it evicts it.
            truncatedBeforeTheEviction(fe, lastPage, peer, other, QueueFault.Reason.BAD_RING_ADDRESS, "descriptor table");
        }
    }

    @Test
    void eachLevelTheOperatorFixesEvictsItsLinesAndTheFramesArriveIntact() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        Peer peer = Peer.on(c);
        int sent = 0;
        for (String level : List.of("off", "descriptors", "half-frames", "frames")) {
            try (FrontEnd fe = FrontEnd.in(c, Map.of(EvictedLines.PARAM, level))) {
                GuestNet g = fe.guest();
                g.negotiate(-1L).start().postRx(256);
                for (int i = 0; i < 32; i++) g.send(frame(PEER_MAC, g.mac(), 60 + i, sent + i), GuestNet.TxLayout.ONE);
                int expect = sent += 32;
                await(() -> peer.frames.size() == expect, expect + " frames at the peer");
                g.drainTx(WAIT);
                // Each batch evicts its descriptors' lines (4 descriptors of 16 bytes to a line, a line counted once
                // per batch) and, at "frames", each frame's start, each in a tx slot of its own; at "half-frames", the
                // start of the first two frames in every four of a batch. The guest kicks per frame, so a batch holds
                // 1 to 32 of them: half the frames' lines if all came in one batch, all of them if each came alone.
                long least = switch (level) { case "off" -> 0; case "descriptors" -> 8; case "half-frames" -> 8 + 16; default -> 8 + 32; };
                long most = switch (level) { case "off" -> 0; case "descriptors" -> 32; default -> 32 + 32; };
                // The worker evicts after it publishes, so the guest can have its buffers back a moment before.
                await(() -> g.device.queueCounters(VirtioNetModel.TX0).linesEvicted() >= least, level + ": " + least + " lines evicted");
                assertThat(g.device.queueCounters(VirtioNetModel.TX0).linesEvicted()).as(level).isBetween(least, most);
                assertThat(g.device.needsResetReason()).isEmpty();
            }
        }
        for (int i = 0; i < sent; i++) assertThat(Frames.seq(peer.frames.get(i))).isEqualTo(i);
        assertThat(peer.frames).allSatisfy(f -> assertThat(Frames.intact(f)).isTrue());
        assertThatThrownBy(() -> c.addDevice(VirtioNetModel.TYPE, -1L, Map.of(EvictedLines.PARAM, "sometimes")))
                .hasMessageContaining("parameter 'evict' must be 'auto', 'off', 'descriptors', 'half-frames' or 'frames': 'sometimes'");
    }

    @Test
    void aFrontEndThatTruncatesAFramesBufferBeforeTheEvictionFaultsItsOwnDeviceOnly() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        Peer peer = Peer.on(c);
        GuestNet other = guests.in(c);
        try (FrontEnd fe = FrontEnd.in(c, Map.of(EvictedLines.PARAM, "frames"))) {
            GuestNet g = fe.guest();
            g.negotiate(-1L).start().postRx(256);
            // The tx buffers lie above the rings and the rx buffers: cutting the file at the first leaves all else in
            // place, so that the eviction of the frame's line is the first access to fault (the descriptor lines,
            // evicted first, are in place).
            truncatedBeforeTheEviction(fe, GuestNet.TX_BUFFERS, peer, other, QueueFault.Reason.BUFFER_OUT_OF_RANGE, "buffer");
        }
    }

    /**
     * {@code fe}'s guest sends a frame, and its front-end cuts its file at {@code cutAt} as the frame is delivered; the
     * eviction of a line in {@code what} then faults its device only ({@code reason}), the frame is delivered, and
     * {@code other}'s next frame reaches the peer.
     */
    private static void truncatedBeforeTheEviction(FrontEnd fe, long cutAt, Peer peer, GuestNet other, QueueFault.Reason reason,
                                                   String what) throws Exception {
        GuestNet g = fe.guest();
        long recovered = CacheLines.recovered();
        peer.onDelivery = () -> {
            peer.onDelivery = () -> { };
            assertThat(HostileFds.truncate(fe.file().number(), cutAt)).isZero();
        };
        g.send(frame(PEER_MAC, g.mac(), 60, 7), GuestNet.TxLayout.ONE);

        await(() -> g.device.status().has(DeviceStatus.NEEDS_RESET), "the truncating front-end's device needs a reset");
        assertThat(g.device.needsResetReason()).hasValueSatisfying(r -> assertThat(r)
                .contains("queue 1").contains(reason.text()).contains(what + " faulted when evicted").contains("truncated"));
        assertThat(CacheLines.recovered() - recovered).as("the flush that faulted, recovered").isEqualTo(1);
        assertThat(peer.frames).as("the frame taken before the fault was delivered").singleElement()
                .satisfies(f -> assertThat(Frames.seq(f)).isEqualTo(7));

        // The bus serves the others: another device's frame reaches the peer, and the JVM is alive to see it.
        other.send(frame(PEER_MAC, other.mac(), 80, 8), GuestNet.TxLayout.ONE);
        await(() -> peer.frames.size() == 2, "the other device's frame at the peer");
        assertThat(Frames.seq(peer.frames.get(1))).isEqualTo(8);
        assertThat(other.device.needsResetReason()).isEmpty();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting until " + what);
            Thread.sleep(1);
        }
    }
}
