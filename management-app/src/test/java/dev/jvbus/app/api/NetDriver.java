package dev.jvbus.app.api;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A virtio-net driver on the shm client library, as a host process drives a device: it negotiates,
 * lays out rx (queue 0) and tx (queue 1) in its own memfd, and starts the device. It can send a stream
 * of numbered broadcast frames or receive one, and it can move to another bus the way a migrated guest's
 * driver does: same memory, same rings, same doorbells, no renegotiation.
 *
 * <p>Frames: a zero virtio_net_hdr (12 bytes, VERSION_1), then 60 bytes of Ethernet: broadcast
 * destination, this device's MAC as source, EtherType 0x88b5, and the frame's sequence number
 * (little-endian u64) at byte 14.
 */
final class NetDriver implements AutoCloseable {
    static final long FEATURES = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask() | VirtioNetFeatures.MAC.mask();
    static final int HDR = 12, FRAME = 60, BUF = 2048, RING = 256;
    static final int ETHERTYPE = 0x88b5;
    static final long GUEST_BASE = 0x4000_0000L;
    static final long BROADCAST = 0xffff_ffff_ffffL;
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final DevId devid;
    private volatile BusClient bus;
    private final ClientDevice first;
    private final DriverMemory mem;
    private final MemorySegment seg;
    final ClientQueue rx, tx;
    final long mac;
    final long negotiated;
    private final long rxBase, txBase;
    private final long[] rxAddrOfHead = new long[RING];
    private final int[] txSlotOfHead = new int[RING];
    private final BufferList one = new BufferList(1);
    private volatile Thread worker;
    private volatile boolean stop;

    private NetDriver(Path socket, long devid) throws QueueFault {
        this.devid = new DevId((int) devid);
        this.bus = BusClient.connect(socket, "net-driver-" + devid);
        this.first = bus.open(this.devid);
        this.negotiated = first.negotiate(FEATURES);
        this.mac = MacAddress.fromBytes(first.readConfig(VirtioNetModel.CONFIG_MAC, 6));
        this.mem = first.shareMemory("net-" + devid, 2L << 20, GUEST_BASE);
        this.seg = mem.memfd().segment();
        List<ClientQueue> qs = first.setUpQueues(mem, RING, RING);
        this.rx = qs.get(0);
        this.tx = qs.get(1);
        this.rxBase = mem.allocate((long) RING * BUF, 64);
        this.txBase = mem.allocate((long) RING * BUF, 64);
        first.driverOk();
    }

    /** Opens device {@code devid} of the container behind {@code socket} and starts it. */
    static NetDriver open(Path socket, long devid) throws QueueFault {
        return new NetDriver(socket, devid);
    }

    /**
     * Moves to the bus behind {@code socket}, where the device was restored: this connection ends (the
     * old bus resets its copy of the device, which was paused and saved), the device is opened there and
     * given the same memory and the same doorbells. Rings and positions are in that memory: nothing is
     * negotiated or set up again. The rings' own thread carries on meanwhile.
     */
    void moveTo(Path socket) {
        bus.close();
        BusClient there = BusClient.connect(socket, "net-driver-" + devid.unsigned());
        ClientDevice d = there.open(devid);
        d.shareMemory(mem.memfd().fd(), GUEST_BASE, mem.size(), 0);
        d.setDoorbells(rx.index(), rx.kickFd(), rx.callFd());
        d.setDoorbells(tx.index(), tx.kickFd(), tx.callFd());
        bus = there;
    }

    // ================================================================ receiving

    /** Receives frames on a thread of its own, adding each sequence number to {@code seqs} and counting it in {@code total}. */
    void receive(List<Long> seqs, AtomicLong total) throws QueueFault {
        for (int i = 0; i < RING; i++) postRx(rxBase + (long) i * BUF);
        rx.driver().kickIfNeeded();
        worker = Thread.ofPlatform().daemon().name("net-receiver-" + devid.unsigned()).start(() -> {
            try {
                while (!stop) {
                    long e = rx.pollUsed();
                    if (e == -1) {
                        rx.awaitUsed(TimeUnit.MILLISECONDS.toNanos(50));
                        continue;
                    }
                    long addr = rxAddrOfHead[SplitVirtqueueDriver.usedId(e)];
                    long o = addr - GUEST_BASE;
                    int len = (int) SplitVirtqueueDriver.usedLength(e);
                    if (len != HDR + FRAME || (seg.get(BE16, o + HDR + 12) & 0xffff) != ETHERTYPE)
                        throw new AssertionError("not a stream frame: " + len + " bytes");
                    long seq = seg.get(LE64, o + HDR + 14);
                    synchronized (seqs) {
                        seqs.add(seq);
                    }
                    total.incrementAndGet();
                    postRx(addr);
                    rx.driver().kickIfNeeded();
                }
            } catch (QueueFault | RuntimeException | AssertionError f) {
                failure = f;
            }
        });
    }

    volatile Throwable failure;

    private void postRx(long addr) throws QueueFault {
        int head = rx.add(one.clear().writable(addr, BUF));
        if (head < 0) throw new AssertionError("rx ring full while posting");
        rxAddrOfHead[head] = addr;
    }

    // ================================================================ sending

    private final AtomicLong sent = new AtomicLong();

    /**
     * Sends numbered frames on a thread of its own until {@link #stopSending()}, never more than
     * {@code window} ahead of {@code received} (what the receivers got), so a receiver always has a
     * buffer for every frame and nothing is dropped for want of one.
     */
    void send(AtomicLong received, int window) {
        int[] free = new int[RING];
        int[] freeCount = {0};
        for (int s = RING - 1; s >= 0; s--) free[freeCount[0]++] = s;
        worker = Thread.ofPlatform().daemon().name("net-sender-" + devid.unsigned()).start(() -> {
            try {
                long n = 0;
                while (!stop) {
                    for (long e; (e = tx.pollUsed()) != -1; ) free[freeCount[0]++] = txSlotOfHead[SplitVirtqueueDriver.usedId(e)];
                    if (n - received.get() >= window || freeCount[0] == 0) {
                        LockSupport.parkNanos(100_000);
                        continue;
                    }
                    int slot = free[--freeCount[0]];
                    long a = txBase + (long) slot * BUF;
                    long o = a - GUEST_BASE;
                    seg.asSlice(o, HDR + FRAME).fill((byte) 0);
                    MacAddress.write(seg, o + HDR, BROADCAST);
                    MacAddress.write(seg, o + HDR + 6, mac);
                    seg.set(BE16, o + HDR + 12, (short) ETHERTYPE);
                    seg.set(LE64, o + HDR + 14, n);
                    int head = tx.add(one.clear().readable(a, HDR + FRAME));
                    if (head < 0) throw new AssertionError("tx ring full with " + (n - received.get()) + " frames in flight");
                    txSlotOfHead[head] = slot;
                    tx.kickIfNeeded();
                    sent.set(++n);
                }
            } catch (QueueFault | RuntimeException | AssertionError f) {
                failure = f;
            }
        });
    }

    /** Frames sent so far. */
    long sent() {
        return sent.get();
    }

    /** Stops the sender (or receiver) thread; returns how many frames it sent. */
    long stopSending() throws InterruptedException {
        stop = true;
        Thread w = worker;
        if (w != null) w.join(TimeUnit.SECONDS.toMillis(30));
        return sent.get();
    }

    /** The sequence numbers as one run from {@code from}: each once, in order. */
    static List<Long> run(long from, long count) {
        List<Long> out = new ArrayList<>();
        for (long i = 0; i < count; i++) out.add(from + i);
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        stopSending();
        bus.close();   // the bus resets and frees the device
        rx.close();
        tx.close();
        mem.close();
    }
}
