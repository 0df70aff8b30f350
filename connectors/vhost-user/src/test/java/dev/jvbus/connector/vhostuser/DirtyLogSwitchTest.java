package dev.jvbus.connector.vhostuser;

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
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 9, point 6: the dirty log switched under running rings. QEMU sends SET_LOG_BASE while the
 * rings run (it grows the log when guest memory grows) and, once the back-end has answered, reads
 * the old log one last time and frees it (hw/virtio/vhost.c, vhost_dev_log_resize: set_log_base,
 * then vhost_log_put with sync). This test is that front-end, over a real socket, with real memfds
 * for guest memory and logs and real eventfds, while frames flow both ways through a virtio-net
 * device: device A is served over vhost-user with logging on, device B is its peer on the switch
 * (driven through an {@link Attachment}) and sends to A as fast as it can while A sends to B.
 *
 * <p>The property, as a front-end sees it: a mark is made after the write it records, into the log
 * that is current when the mark is made; a front-end reads each log once, after the back-end
 * acknowledged the log that replaces it (and the last one after GET_VRING_BASE stopped the rings).
 * So every page the device writes while logging is on must show in a log that was current at the
 * write or a later one, as that log reads when the front-end reads it. With log i acknowledged when
 * a buffer was posted and log j sent when its use was seen, an rx data page (marked before its used
 * element is published) must show in one of logs i..j. A used ring whose index moved while log i was
 * current (sampled after i's ack and before i+1 was sent) must show in log i or a later one (its mark
 * follows the index store, so it may land after the front-end saw the index).
 */
class DirtyLogSwitchTest {
    static final int SWITCHES = 1000;
    static final long MEM = 2L << 20;                         // 512 pages of 4 KiB
    static final int LOG_BYTES = (int) (MEM >>> 12 >>> 3);    // one bit per page
    static final long USER_BASE = 0x7f00_0000_0000L;          // where "QEMU" has guest memory mapped
    static final int QSIZE = 256;
    static final long RX_DESC = 0x0, RX_AVAIL = 0x1000, RX_USED = 0x2000;
    static final long TX_DESC = 0x4000, TX_AVAIL = 0x5000, TX_USED = 0x6000;
    static final long TX_BUFFERS = 0x8_0000, TX_SLOT = 0x800;   // 256 slots of 2 KiB
    static final long RX_BUFFERS = 0x10_0000;                  // 256 buffers of one page each
    static final int HDR = 12;                                 // virtio_net_hdr with VERSION_1
    static final long FEATURES = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask();
    static final long MAC_A = MacAddress.parse("02:00:00:00:0a:01"), MAC_B = MacAddress.parse("02:00:00:00:0b:01");
    static final Duration WAIT = Duration.ofSeconds(30);
    static final VarHandle U16 = ValueLayout.JAVA_SHORT.varHandle();

    Path dir;
    Container container;
    Device a, b;
    VhostUserBackend backend;
    Attachment bAttachment;
    Guest guestA, guestB;

    /** The log the front-end handed over last (set before sending it) and the last one the back-end acknowledged. */
    volatile int sent = -1, acked = -1;
    volatile boolean stopA, stopB, abandon;
    final List<Thread> drivers = new ArrayList<>();
    final AtomicReference<Throwable> driverFailure = new AtomicReference<>();

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("jvbus-dirtylog");
        container = Bus.withDiscoveredModels().createContainer("dirtylog-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        a = container.addDevice("virtio-net", -1L, Map.of("mac", MacAddress.toString(MAC_A)));
        b = container.addDevice("virtio-net", -1L, Map.of("mac", MacAddress.toString(MAC_B)));
        backend = VhostUserBackend.serve(a, dir.resolve("a.sock"));
        guestA = new Guest();
        guestB = new Guest();
    }

    @AfterEach
    void tearDown() throws Exception {
        stopA = stopB = abandon = true;
        for (Thread t : drivers) t.join(WAIT.toMillis());
        backend.close();
        if (bAttachment != null) bAttachment.close();
        container.removeDevice(a.devid());
        container.removeDevice(b.devid());
        guestA.close();
        guestB.close();
        try (var s = Files.list(dir)) { s.forEach(p -> p.toFile().delete()); }
        Files.deleteIfExists(dir);
    }

    @Test
    void switchingTheLogAThousandTimesUnderTrafficLosesNoMarkAndNoIndex() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            setUpA(fe);
            setUpB();
            Thread driveA = driver("guest A", () -> guestA.drive(() -> stopA, MAC_B, MAC_A, true));
            Thread driveB = driver("guest B", () -> guestB.drive(() -> stopB, MAC_A, MAC_B, false));

            // Migration starts with traffic flowing: the first log, then LOG_ALL.
            awaitTraffic(0, 0);
            long[][] seen = new long[SWITCHES + 1][];
            boolean[] rxUsedMoved = new boolean[SWITCHES + 1], txUsedMoved = new boolean[SWITCHES + 1];
            sent = 0;
            Memfd log = Memfd.create("log-0", 4096);
            setLogBase(fe, log);
            fe.sendU64NeedReply(Request.SET_FEATURES, FEATURES | (1L << Wire.F_PROTOCOL_FEATURES) | (1L << Wire.F_LOG_ALL));
            assertThat(fe.replyU64(Request.SET_FEATURES)).as("LOG_ALL on").isZero();
            acked = 0;
            int rxAtAck = usedIdx(RX_USED), txAtAck = usedIdx(TX_USED);

            for (int i = 0; i < SWITCHES; i++) {
                awaitTraffic(guestA.rxCollected, guestA.txCollected);   // frames both ways while log i is current
                rxUsedMoved[i] = usedIdx(RX_USED) != rxAtAck;
                txUsedMoved[i] = usedIdx(TX_USED) != txAtAck;
                sent = i + 1;
                Memfd next = Memfd.create("log-" + (i + 1), 4096);
                setLogBase(fe, next);
                acked = i + 1;
                rxAtAck = usedIdx(RX_USED);
                txAtAck = usedIdx(TX_USED);
                seen[i] = read(log);      // the front-end reads the old log once, after the switch, and frees it
                log.close();
                log = next;
            }

            // Traffic stops: B first (its frames to A are delivered before its tx buffers come back), then A.
            stopB = true;
            driveB.join(WAIT.toMillis());
            stopA = true;
            driveA.join(WAIT.toMillis());
            assertThat(driveA.isAlive() || driveB.isAlive()).as("both drivers finished their rings").isFalse();
            assertThat(driverFailure.get()).as("driver failure").isNull();
            rxUsedMoved[SWITCHES] = usedIdx(RX_USED) != rxAtAck;
            txUsedMoved[SWITCHES] = usedIdx(TX_USED) != txAtAck;

            assertThat(a.needsResetReason()).as("no worker of A failed").isEmpty();
            assertThat(b.needsResetReason()).as("no worker of B (which writes A's rx) failed").isEmpty();
            assertThat(guestA.err.drain()).as("A's error eventfd").isZero();
            assertThat(backend.session().lastError()).isNull();

            // The rings stop: each answers the next index it would have consumed.
            int rxNext = fe.getVringBase(0);
            int txNext = fe.getVringBase(1);
            assertThat(rxNext).as("rx: every buffer A's device took came back used")
                    .isEqualTo((int) (guestA.rxq.buffersCollected() & 0xffff)).isEqualTo(usedIdx(RX_USED));
            assertThat(txNext).as("tx: every buffer A's driver offered was taken and came back used")
                    .isEqualTo((int) (guestA.txq.buffersAdded() & 0xffff)).isEqualTo(usedIdx(TX_USED));
            seen[SWITCHES] = read(log);   // with the rings stopped, the last sync
            log.close();

            VhostUserSession.LogActivity activity = backend.session().logActivity();
            assertThat(activity.logBasesSet()).isEqualTo(SWITCHES + 1);
            assertThat(activity.pagesMarked()).isPositive();

            // Every rx data page the device wrote shows in a log current between posting and use.
            List<String> lost = new ArrayList<>();
            int checked = 0;
            for (int r = 0; r < guestA.records; r++) {
                int page = guestA.recPage[r], lo = guestA.recLo[r], hi = guestA.recHi[r];
                if (lo < 0) continue;     // posted before logging started
                checked++;
                boolean found = false;
                for (int k = lo; k <= hi && !found; k++) found = marked(seen[k], page);
                if (!found && lost.size() < 10) lost.add("rx page 0x" + Long.toHexString((long) page << 12) + " used under logs " + lo + ".." + hi);
            }
            assertThat(checked).as("rx frames received while logging").isGreaterThanOrEqualTo(SWITCHES);
            assertThat(lost).as("rx data pages written but not in any log current from post to use").isEmpty();
            for (int i = 0; i <= SWITCHES; i++) {
                if (rxUsedMoved[i] && !markedInOrAfter(seen, i, RX_USED)) lost.add("rx used ring moved under log " + i);
                if (txUsedMoved[i] && !markedInOrAfter(seen, i, TX_USED)) lost.add("tx used ring moved under log " + i);
            }
            assertThat(lost).as("used ring pages written but not in the log current then or a later one").isEmpty();
            System.out.printf("[dirty log] %d log switches under traffic: A received %d frames (%d while logging, each page"
                            + " checked against its logs) and sent %d; %d page marks; GET_VRING_BASE rx %d, tx %d%n",
                    SWITCHES, guestA.rxCollected, checked, guestA.txCollected, activity.pagesMarked(), rxNext, txNext);
        }
    }

    // ---- the front-end (QEMU's part) ----

    /** The session order QEMU uses for a net device with a log-capable back-end, up to both rings running. */
    void setUpA(FrontEnd fe) throws Exception {
        fe.send(Request.GET_FEATURES);
        assertThat(fe.replyU64(Request.GET_FEATURES) & (1L << Wire.F_LOG_ALL)).isNotZero();
        fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
        fe.send(Request.SET_OWNER);
        fe.sendU64(Request.SET_FEATURES, FEATURES | (1L << Wire.F_PROTOCOL_FEATURES));
        fe.sendMemTable(MEM, USER_BASE, guestA.mem.fd());
        guestA.createRings();
        fe.placeRing(0, QSIZE, USER_BASE + RX_DESC, USER_BASE + RX_AVAIL, USER_BASE + RX_USED, guestA.rxKick, guestA.rxCall, guestA.err);
        fe.placeRing(1, QSIZE, USER_BASE + TX_DESC, USER_BASE + TX_AVAIL, USER_BASE + TX_USED, guestA.txKick, guestA.txCall, guestA.err);
        waitUntil(() -> a.status().isLive(), "A runs with both rings");
        fe.send(Request.GET_FEATURES);   // a request with a reply: everything before it is handled
        fe.replyU64(Request.GET_FEATURES);
    }

    static void setLogBase(FrontEnd fe, Memfd log) {
        fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(LOG_BYTES).putLong(0).flip(), log.fd());
        assertThat(fe.replyU64(Request.SET_LOG_BASE)).isZero();
    }

    /** B is A's peer on the switch, driven as a guest driver would through its attachment. */
    void setUpB() throws QueueFault {
        bAttachment = b.attach("peer", DeviceObserver.NONE);
        bAttachment.writeStatus(ACKNOWLEDGE | DRIVER);
        bAttachment.ackFeatures(bAttachment.offeredFeatures() & FEATURES);
        bAttachment.addStatus(FEATURES_OK);
        bAttachment.setMemory(guestB.memory);
        guestB.createRings();
        bAttachment.setQueue(new QueueConfig(0, QSIZE, RX_DESC, RX_AVAIL, RX_USED));
        bAttachment.setQueue(new QueueConfig(1, QSIZE, TX_DESC, TX_AVAIL, TX_USED));
        bAttachment.setDoorbells(0, guestB.rxKick, Notifier.of(guestB.rxCall));
        bAttachment.setDoorbells(1, guestB.txKick, Notifier.of(guestB.txCall));
        bAttachment.addStatus(DRIVER_OK);
    }

    interface Loop { void run() throws Exception; }

    Thread driver(String name, Loop loop) {
        Thread t = Thread.ofPlatform().name(name).daemon().start(() -> {
            try {
                loop.run();
            } catch (Throwable e) {
                driverFailure.compareAndSet(null, e);
            }
        });
        drivers.add(t);
        return t;
    }

    /** Waits until A has received and sent more than before; fails at once if a device stopped. */
    void awaitTraffic(long rxBefore, long txBefore) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (guestA.rxCollected <= rxBefore || guestA.txCollected <= txBefore) {
            assertThat(a.status().has(DeviceStatus.NEEDS_RESET)).as("A needs reset: " + a.needsResetReason()).isFalse();
            assertThat(b.status().has(DeviceStatus.NEEDS_RESET)).as("B needs reset: " + b.needsResetReason()).isFalse();
            assertThat(driverFailure.get()).as("driver failure").isNull();
            assertThat(System.nanoTime() - deadline).as("frames flow both ways within " + WAIT).isNegative();
            Thread.sleep(0, 100_000);
        }
    }

    /** A's used index as the device published it. */
    int usedIdx(long usedRing) {
        return Short.toUnsignedInt((short) U16.getAcquire(guestA.mem.segment(), usedRing + 2));
    }

    static long[] read(Memfd log) {
        return log.segment().asSlice(0, LOG_BYTES).toArray(ValueLayout.JAVA_LONG);
    }

    static boolean marked(long[] words, long page) {
        return (words[(int) (page >>> 6)] & (1L << (page & 63))) != 0;
    }

    static boolean markedInOrAfter(long[][] seen, int from, long addr) {
        for (int k = from; k < seen.length; k++) if (marked(seen[k], addr >>> 12)) return true;
        return false;
    }

    /** Polls a condition with a generous deadline (the machine may be busy). */
    static void waitUntil(java.util.function.BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!cond.getAsBoolean()) {
            assertThat(System.nanoTime() - deadline).as(what).isNegative();
            Thread.sleep(1);
        }
    }

    /**
     * One guest's side of a virtio-net device: its memory, both rings and buffers. A sends and
     * receives; B only sends (frames for B find no rx buffer, which costs A nothing).
     */
    final class Guest implements AutoCloseable {
        final Memfd mem = Memfd.create("guest", MEM);
        final GuestMemory memory = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
        final EventFd rxKick = EventFd.create(), rxCall = EventFd.create(), txKick = EventFd.create(), txCall = EventFd.create();
        final EventFd err = EventFd.create();
        SplitVirtqueueDriver rxq, txq;
        final ArrayDeque<Integer> freeTx = new ArrayDeque<>(), freeRx = new ArrayDeque<>();
        final int[] txSlotOf = new int[QSIZE], rxPageOf = new int[QSIZE], rxLoOf = new int[QSIZE];
        volatile long rxCollected, txCollected;
        int[] recPage = new int[1 << 16], recLo = new int[1 << 16], recHi = new int[1 << 16];
        int records;
        int seq;

        Guest() {
            for (int s = 0; s < QSIZE; s++) { freeTx.add(s); freeRx.add(s); }
        }

        void createRings() throws QueueFault {
            rxq = SplitVirtqueueDriver.create(0, QSIZE, RX_DESC, RX_AVAIL, RX_USED, memory, true, false, false, Notifier.of(rxKick));
            txq = SplitVirtqueueDriver.create(1, QSIZE, TX_DESC, TX_AVAIL, TX_USED, memory, true, false, false, Notifier.of(txKick));
        }

        /** Sends to {@code dst} until stopped, then waits for its tx buffers back; with {@code receive} also keeps rx filled. */
        void drive(java.util.function.BooleanSupplier stop, long dst, long src, boolean receive) throws Exception {
            long deadline = Long.MAX_VALUE;
            while (!abandon && (txq.outstanding() > 0 || !stop.getAsBoolean())) {
                boolean stopping = stop.getAsBoolean();
                if (stopping && deadline == Long.MAX_VALUE) deadline = System.nanoTime() + WAIT.toNanos();
                if (System.nanoTime() > deadline) throw new AssertionError(txq.outstanding() + " tx buffers never came back: " + txq);
                boolean progress = reclaimTx();
                if (!stopping) progress |= send(dst, src);
                if (receive) progress |= receive();
                if (!progress) LockSupport.parkNanos(20_000);
            }
            if (receive) receive();
        }

        boolean reclaimTx() throws QueueFault {
            boolean any = false;
            for (long e; (e = txq.pollUsed()) >= 0; any = true) {
                freeTx.add(txSlotOf[SplitVirtqueueDriver.usedId(e)]);
                txCollected++;
            }
            return any;
        }

        boolean send(long dst, long src) throws QueueFault {
            Integer slot = freeTx.poll();
            if (slot == null) return false;
            int len = 60 + (seq * 37) % 1455;
            MemorySegment s = mem.segment();
            long off = TX_BUFFERS + slot * TX_SLOT;
            s.asSlice(off, HDR).fill((byte) 0);
            MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(dst)), 0, s, off + HDR, 6);
            MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(src)), 0, s, off + HDR + 6, 6);
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + HDR + 12, (short) 0xb588);
            s.set(ValueLayout.JAVA_INT_UNALIGNED, off + HDR + 14, seq++);
            int head = txq.add(off, HDR + len, false);
            if (head < 0) throw new AssertionError("no tx descriptor although a slot was free");
            txSlotOf[head] = slot;
            txq.kickIfNeeded();
            return true;
        }

        /** Collects used rx buffers (recording page, log acked at post, log sent at use) and posts every free buffer. */
        boolean receive() throws QueueFault {
            boolean any = false;
            for (long e; (e = rxq.pollUsed()) >= 0; any = true) {
                int head = SplitVirtqueueDriver.usedId(e);
                record(rxPageOf[head], rxLoOf[head], sent);
                freeRx.add((int) ((((long) rxPageOf[head] << 12) - RX_BUFFERS) >>> 12));
                rxCollected++;
            }
            for (Integer buf; (buf = freeRx.peek()) != null; ) {
                int lo = acked;   // read before the buffer is offered: the device cannot write it under an older log
                long addr = RX_BUFFERS + ((long) buf << 12);
                int head = rxq.addLater(addr, 4096, true);
                if (head < 0) break;
                freeRx.poll();
                rxPageOf[head] = (int) (addr >>> 12);
                rxLoOf[head] = lo;
                any = true;
            }
            rxq.kickIfNeeded();
            return any;
        }

        private void record(int page, int lo, int hi) {
            if (records == recPage.length) {
                recPage = Arrays.copyOf(recPage, records * 2);
                recLo = Arrays.copyOf(recLo, records * 2);
                recHi = Arrays.copyOf(recHi, records * 2);
            }
            recPage[records] = page;
            recLo[records] = lo;
            recHi[records] = hi;
            records++;
        }

        @Override
        public void close() {
            for (AutoCloseable c : new AutoCloseable[] {rxKick, rxCall, txKick, txCall, err, mem}) {
                try {
                    c.close();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
    }
}
