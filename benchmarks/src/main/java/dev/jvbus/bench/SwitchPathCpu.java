package dev.jvbus.bench;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import dev.jvbus.net.SwitchPort;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * CPU nanoseconds per frame of the bus's own switching path, measured in one thread (issue 18: bench-switch and
 * bench-vhost measure throughput, which on a shared 2-core machine measures the other helpers as much as us).
 * Rounds, children and the report are {@link TransportLoopCpu}'s (a child JVM per contender, alternated round by
 * round, median of per-round ratios with its spread); only the loop differs. Contenders are cases, optionally
 * of another build ({@code switch@before.jar}):
 * <ul>
 *   <li><b>switch</b> ({@code bench-switch}'s path): two virtio-net devices on one {@link L2Switch}, each driven by a
 *       front-end in this thread playing testpmd's {@code net_virtio_user} in mac forwarding: it puts a burst of 32
 *       frames on port A's tx ring (one descriptor each, virtio_net_hdr and frame together, the MACs written per frame
 *       as testpmd's mac mode writes them), the device's tx service takes them (pop, header check, switch, copy into
 *       B's rx buffer, publish once per batch), and B's front-end collects them and posts the buffers again; then the
 *       same from B to A. Per frame: one tx pop, one MAC lookup, one rx pop and scatter, the front-end's share.</li>
 *   <li><b>vhost</b> ({@code bench-vhost}'s path): one device, its tx frames going through the switch to
 *       {@link VhostUserBench.CountingPort} (which copies each frame out, as DPDK's rxonly copies into an mbuf).</li>
 * </ul>
 * Everything runs as the vhost-user back-end runs it, less the socket: the front-end's memory is a memfd the
 * device sees through a second mapping of that file ({@code Memfd.adopt}, {@link MappingRule#SHARED_FILE}, as
 * {@code MemoryTable} maps a front-end's regions), rings start from base 0 (SET_VRING_BASE), the features are what
 * testpmd's virtio_user negotiates with us (VERSION_1, MRG_RXBUF, INDIRECT_DESC, IN_ORDER; no EVENT_IDX), 256
 * entries per ring. The front-end keeps interrupts off and the device's tx doorbell is disarmed, as in the polling
 * loop, so nothing here makes a syscall per burst.
 *
 * <p>The tx queue's own worker (a poll group member) is parked ({@link QueueWorker#quiesce()}) and its
 * {@link QueueService} is polled from this thread instead; both are private to the device, reached by reflection
 * here only (the harness must not add a way into the device's tx path that production code could call).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/jvbus-benchmarks.jar
 * dev.jvbus.bench.SwitchPathCpu [--cases switch,vhost] [--size 64] [--rounds 15] [--window-ms 300] [--warmup-ms 6000]};
 * a case {@code switch@/tmp/before.jar} runs that build's harness (before/after), as {@link TransportLoopCpu} does.
 * {@code --solo CASE SIZE SECONDS} runs one case in this JVM for that long (for a profiler attached to it).
 */
public final class SwitchPathCpu {
    static final int BURST = 32;                 // testpmd's burst
    static final int QUEUE = 256;                // virtio_user's default queue size
    static final int HDR = 12;                   // virtio_net_hdr with VERSION_1 / MRG_RXBUF
    /** Negotiate VIRTIO_F_IN_ORDER, as testpmd does with us; on unless -Djvbus.bench.inOrder=false. */
    static final boolean IN_ORDER = !"false".equals(System.getProperty("jvbus.bench.inOrder"));
    static final int RX_BUFFER = 2048;           // an mbuf's data room, what virtio_user posts for rx
    static final long MAC_A = MacAddress.parse("02:00:00:00:5c:0a"), MAC_B = MacAddress.parse("02:00:00:00:5c:0b");
    static final long PEER_MAC = MacAddress.parse("02:00:00:00:5c:0f");
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);

    private SwitchPathCpu() {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--child")) {
            child(args[1], Integer.parseInt(args[2]));
            return;
        }
        if (args.length > 0 && args[0].equals("--solo")) {
            solo(args[1], Integer.parseInt(args[2]), Double.parseDouble(args[3]));
            return;
        }
        List<String> cases = List.of("switch", "vhost");
        int size = 64, rounds = 15;
        long windowMs = 300, warmupMs = 6000;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--cases" -> cases = List.of(args[++i].split(","));
                case "--size" -> size = Integer.parseInt(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--window-ms" -> windowMs = Long.parseLong(args[++i]);
                case "--warmup-ms" -> warmupMs = Long.parseLong(args[++i]);
                default -> {
                    System.out.println("usage: SwitchPathCpu [--cases switch,vhost,switch@other.jar] [--size N] [--rounds N] [--window-ms MS]"
                            + " [--warmup-ms MS] | --solo CASE SIZE SECONDS");
                    System.exit(2);
                }
            }
        }
        TransportLoopCpu.compare(SwitchPathCpu.class, "frame", cases, size, rounds, windowMs, warmupMs);
    }

    /** One case in this JVM for {@code seconds}, printing ns/frame each second: for JFR. */
    private static void solo(String kind, int size, double seconds) throws Exception {
        try (Loop loop = Loop.of(kind, size)) {
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < end) System.out.printf(Locale.ROOT, "%s %d B: %.2f ns/frame%n", kind, size, window(loop, mx, 1000));
        }
    }

    private static void child(String kind, int size) throws Exception {
        try (Loop loop = Loop.of(kind, size)) {
            ThreadMXBean mx = ManagementFactory.getThreadMXBean();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String l; (l = in.readLine()) != null; ) {
                System.out.println(window(loop, mx, Long.parseLong(l.substring(4).trim())));
                System.out.flush();
            }
        }
    }

    /** Runs the loop for {@code ms} of wall time; thread CPU ns per frame over it. */
    private static double window(Loop loop, ThreadMXBean mx, long ms) throws QueueFault {
        long end = System.nanoTime() + ms * 1_000_000;
        long cpu0 = mx.getCurrentThreadCpuTime();
        long frames = 0;
        do {
            for (int i = 0; i < 64; i++) frames += loop.step();
        } while (System.nanoTime() < end);
        long cpu = mx.getCurrentThreadCpuTime() - cpu0;
        loop.check();
        return (double) cpu / frames;
    }

    /** A case's loop: each step moves some frames through the path and says how many. */
    private abstract static sealed class Loop implements AutoCloseable permits SwitchLoop, VhostLoop {
        final Container container;

        Loop(String name) {
            container = Bus.withDiscoveredModels().createContainer(name);
        }

        static Loop of(String kind, int size) throws Exception {
            return switch (kind) {
                case "switch" -> new SwitchLoop(size);
                case "vhost" -> new VhostLoop(size);
                default -> throw new IllegalArgumentException("no case '" + kind + "' (switch, vhost)");
            };
        }

        abstract int step() throws QueueFault;

        /** Throws if the path lost or changed anything so far (a figure over a broken path means nothing). */
        abstract void check();

        static void noDrops(L2Switch sw) {
            for (PortStats s : sw.stats())
                if (!s.drops().isEmpty()) throw new IllegalStateException("the switch dropped frames: " + s);
        }

        /** The devices detach with their front-ends; the container goes with the JVM (one case per child). */
        @Override
        public void close() {}
    }

    /** bench-switch's path: A's tx -> switch -> B's rx, then back. */
    private static final class SwitchLoop extends Loop {
        final FrontEnd a, b;
        final L2Switch sw;

        SwitchLoop(int size) throws Exception {
            super("switch-cpu");
            Device da = container.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_A)));
            Device db = container.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_B)));
            sw = Networks.of(container).require("switch");
            a = new FrontEnd(da, size, MAC_A, MAC_B);
            b = new FrontEnd(db, size, MAC_B, MAC_A);
        }

        @Override
        int step() throws QueueFault {
            return a.sendTo(b) + b.sendTo(a);
        }

        @Override
        void check() {
            noDrops(sw);
            a.check();
            b.check();
        }

        @Override
        public void close() {
            a.close();
            b.close();
            super.close();
        }
    }

    /** bench-vhost's path: the device's tx -> switch -> a port that copies each frame out and counts it. */
    private static final class VhostLoop extends Loop {
        final FrontEnd a;
        final L2Switch sw;
        final VhostUserBench.CountingPort peer = new VhostUserBench.CountingPort();
        final SwitchPort peerPort;
        final int size;
        long sent;

        VhostLoop(int size) throws Exception {
            super("vhost-cpu");
            this.size = size;
            Device da = container.addDevice("virtio-net", -1L, Map.of("network", "bench", "mac", MacAddress.toString(MAC_A)));
            sw = Networks.of(container).require("bench");
            peerPort = VhostUserBench.joinPeer(sw, peer, PEER_MAC);   // as bench-vhost joins it
            a = new FrontEnd(da, size, MAC_A, PEER_MAC);
        }

        @Override
        int step() throws QueueFault {
            int n = a.sendTo(null);
            sent += n;
            return n;
        }

        @Override
        void check() {
            noDrops(sw);
            a.check();
            if (peer.frames != sent || peer.bytes != sent * size)
                throw new IllegalStateException("the peer counted " + peer.frames + " frames of " + peer.bytes + " bytes; sent " + sent + " of " + size);
        }

        @Override
        public void close() {
            a.close();
            peerPort.leave();
            super.close();
        }
    }

    /**
     * A front-end as testpmd's virtio_user drives one port, in this thread: its memory a memfd (guest address =
     * offset) that the device maps a second time, an rx and a tx ring of {@link #QUEUE} entries, rx buffers of
     * {@link #RX_BUFFER} bytes, tx slots of 2 KiB with the header in front of the frame. Interrupts off.
     */
    static final class FrontEnd implements AutoCloseable {
        /**
         * The front-end's memory: by default a memfd without seals, as testpmd's {@code --no-huge} memory (what
         * bench-switch and bench-vhost run against); {@code -Djvbus.bench.sealed=true}: a memfd sealed against
         * shrinking, as QEMU's memfd backend makes it, which spares the device the fault check per delivery.
         */
        static final boolean SEALED = Boolean.getBoolean("jvbus.bench.sealed");
        static final long RX_RING = 0, TX_RING = 0x4000, RX_BUFS = 0x10_0000, TX_BUFS = 0x20_0000, BYTES = 0x40_0000;
        static final int SLOT = 2048;
        final Device device;
        final Attachment attachment;
        final Memfd mem;
        final Memfd mapped;           // the device's view: the same file mapped again
        final MemorySegment seg;
        final SplitVirtqueueDriver rx, tx;
        final QueueService txService;
        final QueueWorker txWorker;
        final EventFd rxKick = EventFd.create(), rxCall = EventFd.create(), txKick = EventFd.create(), txCall = EventFd.create();
        final int size;
        final long src, dst;
        int nextTxSlot;
        long received, badFrames;

        FrontEnd(Device device, int size, long src, long dst) throws Exception {
            this.device = device;
            this.size = size;
            this.src = src;
            this.dst = dst;
            // The driver's view: the file mapped as a peer's (global scope) either way, so that the two kinds of file
            // differ in nothing but the seal.
            if (SEALED) {
                try (Memfd sealed = Memfd.create("switch-cpu-frontend", BYTES)) {
                    this.mem = Memfd.adopt(OwnedFd.duplicate(sealed.fd()), 0, BYTES, MappingRule.SHARED_FILE);
                }
            } else {   // as testpmd's --no-huge memory: a memfd without seals
                int fd = Posix.unsealedMemfd("nohuge", BYTES);
                try {
                    this.mem = Memfd.adopt(OwnedFd.duplicate(fd), 0, BYTES, MappingRule.SHARED_FILE);
                } finally {
                    Posix.close(fd);
                }
            }
            this.seg = mem.segment();
            this.mapped = Memfd.adopt(OwnedFd.duplicate(mem.fd()), 0, BYTES, MappingRule.SHARED_FILE);
            // As MemoryTable maps it: a file that can shrink carries its check (deliveries into it surface faults).
            GuestMemory devMemory = GuestMemory.of(new MemoryRegion(0, BYTES, mapped.segment(), mapped.lifetime(), mapped.shrinkable()));
            GuestMemory drvMemory = GuestMemory.of(new MemoryRegion(0, BYTES, seg));
            attachment = device.attach("switch-cpu", DeviceObserver.NONE);
            // As VhostUserSession negotiates what testpmd's virtio_user asks of our device: bench-vhost's and
            // bench-switch's testpmd print VERSION_1, MRG_RXBUF, INDIRECT_DESC and IN_ORDER (its in_order devarg is
            // on by default). -Djvbus.bench.inOrder=false leaves IN_ORDER out (this harness before session 16).
            long want = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MRG_RXBUF.mask() | VirtioFeatures.INDIRECT_DESC.mask()
                    | (IN_ORDER ? VirtioFeatures.IN_ORDER.mask() : 0);
            attachment.reset();
            attachment.writeStatus(ACKNOWLEDGE | DRIVER);
            attachment.ackServedFeatures(attachment.offeredFeatures() & want);
            attachment.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
            boolean inOrder = VirtioFeatures.IN_ORDER.in(attachment.negotiatedFeatures());
            rx = SplitVirtqueueDriver.create(0, QUEUE, RX_RING, RX_RING + 0x1000, RX_RING + 0x2000, drvMemory, false, true, inOrder, Notifier.of(rxKick));
            tx = SplitVirtqueueDriver.create(1, QUEUE, TX_RING, TX_RING + 0x1000, TX_RING + 0x2000, drvMemory, false, true, inOrder, Notifier.of(txKick));
            rx.disableInterrupts();
            tx.disableInterrupts();
            attachment.setMemory(devMemory);
            for (int q = 0; q < 2; q++) {
                long base = q == 0 ? RX_RING : TX_RING;
                QueueConfig cfg = new QueueConfig(q, QUEUE, base, base + 0x1000, base + 0x2000);
                attachment.setQueue(cfg, new QueueState(q, RingKind.SPLIT, QUEUE, true, cfg.descAddr(), cfg.availAddr(), cfg.usedAddr(),
                        0, 0, false, List.of()));
                attachment.setDoorbells(q, q == 0 ? rxKick : txKick, Notifier.of(q == 0 ? rxCall : txCall));
                attachment.setQueueActive(q, true);
            }
            attachment.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
            for (int s = 0; s < QUEUE; s++) rx.addLater(RX_BUFS + (long) s * RX_BUFFER, RX_BUFFER, true);
            rx.publishAvail();
            // Tx slots: the frame's bytes past the MACs written once (an IPv4/UDP-looking frame); per frame only the
            // header and the MACs, as testpmd's mac forwarding rewrites them.
            for (int s = 0; s < QUEUE; s++) {
                long at = TX_BUFS + (long) s * SLOT + HDR;
                seg.set(BE16, at + 12, (short) 0x0800);
                for (int i = 14; i < size; i++) seg.set(ValueLayout.JAVA_BYTE, at + i, (byte) (i * 7));
            }
            // The device's tx worker steps aside: this thread polls its service.
            Object fn = attachment.function();
            Object[] txq = (Object[]) field(fn.getClass(), "txq").get(fn);
            txWorker = (QueueWorker) field(txq[0].getClass(), "worker").get(txq[0]);
            if (!txWorker.quiesce()) throw new IllegalStateException(txWorker + " did not park");
            txService = (QueueService) field(QueueWorker.class, "service").get(txWorker);
            txService.disarmDoorbell();
        }

        private static Field field(Class<?> c, String name) throws NoSuchFieldException {
            Field f = c.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        }

        /** A burst from this port's tx through the device's tx service; {@code to}'s front-end takes what arrived. */
        int sendTo(FrontEnd to) throws QueueFault {
            for (int i = 0; i < BURST; i++) {
                long at = TX_BUFS + (long) (nextTxSlot++ & (QUEUE - 1)) * SLOT;
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED, at, 0L);          // virtio_net_hdr: nothing asked
                seg.set(ValueLayout.JAVA_INT_UNALIGNED, at + 8, 0);
                seg.set(BE16, at + HDR, (short) (dst >>> 32));              // destination, source: as testpmd's mac mode
                seg.set(BE32, at + HDR + 2, (int) dst);
                seg.set(BE16, at + HDR + 6, (short) (src >>> 32));
                seg.set(BE32, at + HDR + 8, (int) src);
                if (tx.addLater(at, HDR + size, false) < 0) throw new IllegalStateException("tx ring full");
            }
            tx.kickIfNeeded();                 // publishes; NO_NOTIFY is set (the service is disarmed): no syscall
            while (txService.poll()) { }
            if (to != null) to.receive();
            tx.collectUsed();
            return BURST;
        }

        /** Collects the frames the device wrote into rx buffers and posts the buffers again. */
        void receive() throws QueueFault {
            long e;
            while ((e = rx.pollUsed()) >= 0) {
                long len = SplitVirtqueueDriver.usedLength(e);
                int id = SplitVirtqueueDriver.usedId(e);
                long at = RX_BUFS + (long) slotOf(id) * RX_BUFFER + HDR;
                // What testpmd's mac mode reads of each frame: its addresses (and the length), here checked.
                if (len != HDR + size || seg.get(BE16, at) != (short) (src >>> 32) || seg.get(BE32, at + 2) != (int) src) badFrames++;
                received++;
                if (rx.addLater(RX_BUFS + (long) slotOf(id) * RX_BUFFER, RX_BUFFER, true) < 0) throw new IllegalStateException("rx ring full");
            }
            rx.publishAvail();
        }

        /**
         * Buffer s was posted first at head s; collecting a head frees that descriptor and the next add takes it again
         * (the driver's free list is LIFO, one descriptor per buffer), so a head always names the same buffer.
         */
        private static int slotOf(int id) {
            return id;
        }

        void check() {
            if (badFrames != 0) throw new IllegalStateException(badFrames + " frames of the wrong length or for another MAC");
            if (device.needsResetReason().isPresent()) throw new IllegalStateException("device needs reset: " + device.needsResetReason().get());
        }

        @Override
        public void close() {
            txWorker.resume();
            attachment.close();
            rxKick.close();
            rxCall.close();
            txKick.close();
            txCall.close();
            mapped.close();
            mem.close();
        }
    }
}
