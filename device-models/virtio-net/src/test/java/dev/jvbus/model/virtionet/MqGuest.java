package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Test-side multiqueue driver for one virtio-net device, as Linux's virtio-net lays it out with MQ: every pair
 * the device has (rx N at 2N, tx N at 2N+1), the control queue after them. Plain buffers (no merging, no
 * offloads), one frame per tx buffer; each tx queue may be driven by a thread of its own, each rx queue polled
 * by one. Everything in one memfd: per pair a fixed window for its two rings and their buffers.
 */
final class MqGuest implements AutoCloseable {
    static final long G = 0x4000_0000L;
    static final int SIZE = 256, BUF = 2048, HDR = 12;
    static final long PAIR_WINDOW = 0x20_0000;                    // 2 MiB per pair: rings, then rx and tx buffers
    static final long RX_RING = 0, TX_RING = 0x8000, RX_BUFS = 0x1_0000, TX_BUFS = RX_BUFS + (long) SIZE * BUF;

    Device device;
    Attachment a;
    final Memfd mem;
    final GuestMemory memory;
    final int maxPairs, ctrlIndex;
    final long features;
    final SplitVirtqueueDriver[] rxq, txq;
    final EventFd[] kicks;
    SplitVirtqueueDriver ctrlq;
    private final int[] txNext;
    private final long[][] rxAddrOf;      // per rx queue: head -> buffer address (guest)
    private final BufferList[] lists;

    /** Where the delivery log sits when the guest keeps one (in the control queue's window, after its commands). */
    static final long LOG_OFFSET = 0x3_0000;
    private final boolean deliveryLog;

    /** Negotiates what is offered of {@code want}, sets up every pair the device has (one without MQ), and DRIVER_OK. */
    MqGuest(Device device, long want) throws QueueFault {
        this(device, want, false);
    }

    /** As {@link #MqGuest(Device, long)}, with a delivery log ({@link VirtioNetModel#CALL_DELIVERY_LOG}) if {@code deliveryLog}. */
    MqGuest(Device device, long want, boolean deliveryLog) throws QueueFault {
        this.device = device;
        this.deliveryLog = deliveryLog;
        this.a = device.attach("mq-guest", new dev.jvbus.core.bus.DeviceObserver() { });
        maxPairs = (int) GuestNet.le16(a.readConfig(VirtioNetModel.CONFIG_MAX_PAIRS, 2));
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        // Without CTRL_VQ the guest acts as a vhost-user front-end that serves its own control queue: it acks
        // MQ without it, which only the front-end's path (the served set, checked against the offer) allows.
        if (VirtioNetFeatures.CTRL_VQ.in(want)) a.ackFeatures(a.offeredFeatures() & want);
        else a.ackServedFeatures(a.offeredFeatures() & want);
        a.addStatus(FEATURES_OK);
        features = a.negotiatedFeatures();
        int pairs = VirtioNetFeatures.MQ.in(features) ? maxPairs : 1;
        ctrlIndex = VirtioNetModel.ctrlQueue(features, maxPairs);
        mem = Memfd.create("mq-guest", PAIR_WINDOW * (maxPairs + 1));
        memory = GuestMemory.of(new MemoryRegion(G, PAIR_WINDOW * (maxPairs + 1), mem.segment()));
        a.setMemory(memory);
        rxq = new SplitVirtqueueDriver[pairs];
        txq = new SplitVirtqueueDriver[pairs];
        kicks = new EventFd[2 * pairs + 1];
        txNext = new int[pairs];
        lists = new BufferList[pairs];
        rxAddrOf = new long[pairs][SIZE];
        for (int p = 0; p < pairs; p++) {
            rxq[p] = queue(VirtioNetModel.rxQueue(p), base(p) + RX_RING, SIZE);
            txq[p] = queue(VirtioNetModel.txQueue(p), base(p) + TX_RING, SIZE);
            lists[p] = new BufferList(2);
        }
        if (VirtioNetFeatures.CTRL_VQ.in(features)) ctrlq = queue(ctrlIndex, base(maxPairs), 64);
        callDeliveryLog();
        a.addStatus(DRIVER_OK);
        for (int p = 0; p < pairs; p++) postRx(p);
    }

    private static long base(int pair) {
        return G + PAIR_WINDOW * pair;
    }

    private SplitVirtqueueDriver queue(int index, long at, int size) throws QueueFault {
        EventFd kick = EventFd.create();
        kicks[index == ctrlIndex ? kicks.length - 1 : index] = kick;
        SplitVirtqueueDriver q = SplitVirtqueueDriver.create(index, size, at, at + 0x2000, at + 0x4000, memory, false, false, false,
                Notifier.of(kick));
        a.setQueue(new QueueConfig(index, size, at, at + 0x2000, at + 0x4000));
        a.setDoorbells(index, kick, Notifier.NONE);
        return q;
    }

    /** Stops the control queue (virtio 1.2 queue reset, a vhost-user GET_VRING_BASE) and starts it again where it was. */
    void restartCtrl(Runnable whileStopped) {
        dev.jvbus.core.state.QueueState s = a.stopQueue(ctrlIndex).orElseThrow();
        whileStopped.run();
        long at = base(maxPairs);
        a.startQueue(new QueueConfig(ctrlIndex, 64, at, at + 0x2000, at + 0x4000), s, kicks[kicks.length - 1], Notifier.NONE);
    }

    private void callDeliveryLog() {
        if (!deliveryLog) return;
        try {
            a.call(VirtioNetModel.CALL_DELIVERY_LOG, ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .putLong(base(maxPairs) + LOG_OFFSET).array());
        } catch (dev.jvbus.core.spi.DeviceFault e) {
            throw new AssertionError(e);
        }
    }

    /**
     * The bus under this guest is gone (its device dropped without a word, as a SIGKILLed bus) and {@code there} is
     * the same device on the restarted bus: the guest resumes it as the shm client does (same features, not
     * negotiated again; every ring carrying on from its used index in memory; the delivery log given again).
     */
    void resumeOn(Device there) throws QueueFault {
        a.close();
        device = there;
        a = there.attach("mq-guest", new dev.jvbus.core.bus.DeviceObserver() { });
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        if (VirtioNetFeatures.CTRL_VQ.in(features)) a.ackFeatures(features);
        else a.ackServedFeatures(features);
        a.addStatus(FEATURES_OK);
        a.setMemory(memory);
        for (int p = 0; p < rxq.length; p++) {
            resume(VirtioNetModel.rxQueue(p), base(p) + RX_RING, SIZE);
            resume(VirtioNetModel.txQueue(p), base(p) + TX_RING, SIZE);
        }
        if (ctrlq != null) resume(ctrlIndex, base(maxPairs), 64);
        callDeliveryLog();
        a.addStatus(DRIVER_OK);
    }

    private void resume(int index, long at, int size) throws QueueFault {
        a.setQueue(new QueueConfig(index, size, at, at + 0x2000, at + 0x4000),
                dev.jvbus.core.ring.virtio.SplitRingResume.fromUsed(index, size, at, at + 0x2000, at + 0x4000, memory, false));
        a.setDoorbells(index, kicks[index == ctrlIndex ? kicks.length - 1 : index], Notifier.NONE);
    }

    long mac() {
        return MacAddress.fromBytes(a.readConfig(VirtioNetModel.CONFIG_MAC, 6));
    }

    int pairs() {
        return rxq.length;
    }

    private void postRx(int p) throws QueueFault {
        BufferList l = new BufferList(1);
        for (int s = 0; s < SIZE; s++) {
            long addr = base(p) + RX_BUFS + (long) s * BUF;
            l.clear();
            int head = rxq[p].add(l.writable(addr, BUF));
            if (head < 0) break;
            rxAddrOf[p][head] = addr;
        }
        rxq[p].kickIfNeeded();
    }

    /** Sends {@code frame} on tx queue {@code p} (one thread per queue); waits for a free slot. */
    void send(int p, byte[] frame) throws QueueFault {
        SplitVirtqueueDriver q = txq[p];
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (q.freeDescriptors() < 1) {
            while (q.pollUsed() >= 0) { }
            if (q.freeDescriptors() >= 1) break;
            if (System.nanoTime() > deadline) throw new AssertionError("tx" + p + " stayed full");
            Thread.onSpinWait();
        }
        int slot = txNext[p]++ % SIZE;
        long off = base(p) - G + TX_BUFS + (long) slot * BUF;
        MemorySegment seg = mem.segment();
        seg.asSlice(off, HDR).fill((byte) 0);
        MemorySegment.copy(MemorySegment.ofArray(frame), 0, seg, off + HDR, frame.length);
        lists[p].clear();
        if (q.add(lists[p].readable(G + off, HDR + frame.length)) < 0) throw new AssertionError("no descriptor free");
        q.kickIfNeeded();
    }

    /** Frames received on rx queue {@code p} now (its buffers posted again). */
    List<byte[]> poll(int p) throws QueueFault {
        List<byte[]> out = new ArrayList<>();
        SplitVirtqueueDriver q = rxq[p];
        BufferList l = new BufferList(1);
        for (long e; (e = q.pollUsed()) >= 0; ) {
            int head = SplitVirtqueueDriver.usedId(e);
            int len = (int) SplitVirtqueueDriver.usedLength(e);
            long addr = rxAddrOf[p][head];
            out.add(mem.segment().asSlice(addr - G + HDR, len - HDR).toArray(ValueLayout.JAVA_BYTE));
            l.clear();
            rxAddrOf[p][q.add(l.writable(addr, BUF))] = addr;
        }
        if (!out.isEmpty()) q.kickIfNeeded();
        return out;
    }

    /** One control command (as GuestNet#command): the ack, 0 OK or 1 ERR. */
    int command(int cls, int cmd, byte[] data) throws QueueFault {
        long at = PAIR_WINDOW * maxPairs + 0x1_0000;
        MemorySegment seg = mem.segment();
        seg.set(ValueLayout.JAVA_BYTE, at, (byte) cls);
        seg.set(ValueLayout.JAVA_BYTE, at + 1, (byte) cmd);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, seg, at + 16, data.length);
        seg.set(ValueLayout.JAVA_BYTE, at + 15, (byte) 0xee);
        BufferList l = new BufferList(3).readable(G + at, 2);
        if (data.length > 0) l.readable(G + at + 16, data.length);
        l.writable(G + at + 15, 1);
        if (ctrlq.add(l) < 0) throw new AssertionError("control queue full");
        ctrlq.kickIfNeeded();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (ctrlq.pollUsed() < 0) {
            if (System.nanoTime() > deadline) throw new AssertionError("the control command was not answered");
            Thread.onSpinWait();
        }
        return seg.get(ValueLayout.JAVA_BYTE, at + 15) & 0xff;
    }

    int setPairs(int n) throws QueueFault {
        return command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, new byte[] {(byte) n, (byte) (n >>> 8)});
    }

    /** A UDP/IPv4 frame of flow (source port {@code sport}) from {@code src} to {@code dst}, carrying {@code seq}. */
    static byte[] udp(long dst, long src, int sport, int dport, int seq) {
        ByteBuffer b = ByteBuffer.allocate(14 + 20 + 8 + 8);
        b.put(MacAddress.toBytes(dst)).put(MacAddress.toBytes(src)).putShort((short) 0x0800);
        b.put((byte) 0x45).put((byte) 0).putShort((short) (20 + 8 + 8)).putShort((short) 0).putShort((short) 0)
                .put((byte) 64).put((byte) 17).putShort((short) 0).putInt(0xc0000201).putInt(0xc0000202);
        b.putShort((short) sport).putShort((short) dport).putShort((short) 16).putShort((short) 0);
        b.putInt(seq).putInt(sport);
        return b.array();
    }

    static int udpSeq(byte[] f) {
        return ByteBuffer.wrap(f).getInt(42);
    }

    static int udpSport(byte[] f) {
        return ByteBuffer.wrap(f).getShort(34) & 0xffff;
    }

    static long all() {
        return -1L;
    }

    /** The features without MQ. */
    static long withoutMq() {
        return ~VirtioNetFeatures.MQ.mask();
    }

    /** The VERSION_1 features a plain driver takes (no offloads: frames arrive as sent). */
    static long plain(boolean mq) {
        long f = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask() | VirtioNetFeatures.CTRL_VQ.mask();
        return mq ? f | VirtioNetFeatures.MQ.mask() : f;
    }

    @Override
    public void close() {
        a.close();
        for (EventFd k : kicks) if (k != null) k.close();
        mem.close();
    }
}
