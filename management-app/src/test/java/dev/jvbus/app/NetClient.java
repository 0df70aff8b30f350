package dev.jvbus.app;

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
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A virtio-net driver in the test's process, over the shm connector's client library: a real UNIX
 * socket to the app's container socket, a memfd shared with the bus, split rings and eventfds. It
 * negotiates VERSION_1 and MAC only (no MRG_RXBUF: each rx buffer holds a whole frame), posts every rx
 * buffer, sends a frame from the device's own MAC (the switch holds the port to it) and takes frames
 * off rx. One thread drives it.
 */
public final class NetClient implements AutoCloseable {
    public static final int QUEUE = 64;
    static final int HDR = 12;               // virtio_net_hdr_v1 (VERSION_1)
    static final int BUF = 2048;             // header + the largest frame
    static final long GUEST_BASE = 0x4000_0000L;
    public static final int ETHERTYPE = 0x88b5; // IEEE local experimental

    private final BusClient bus;
    private final ClientDevice dev;
    private final DriverMemory mem;
    private final ClientQueue rx, tx;
    private final long[] rxAddrOfHead = new long[QUEUE];
    private final long txBase;
    private final byte[] mac;
    private final BufferList one = new BufferList(1);
    private int txNext;

    private NetClient(BusClient bus, long devid) throws QueueFault {
        this.bus = bus;
        this.dev = bus.open(new DevId((int) devid));
        long features = dev.negotiate(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask());
        if (!VirtioFeatures.VERSION_1.in(features)) throw new IllegalStateException("VERSION_1 not negotiated");
        this.mac = dev.readConfig(VirtioNetModel.CONFIG_MAC, 6);
        this.mem = dev.shareMemory("netclient-" + devid, 1 << 20, GUEST_BASE);
        var queues = dev.setUpQueues(mem, QUEUE, QUEUE);
        this.rx = queues.get(0);
        this.tx = queues.get(1);
        long rxBase = mem.allocate((long) QUEUE * BUF, 64);
        this.txBase = mem.allocate((long) QUEUE * BUF, 64);
        dev.driverOk();
        for (int i = 0; i < QUEUE; i++) postRx(rxBase + (long) i * BUF);
        rx.kickIfNeeded();
    }

    /** Connects to {@code socket} (a container's shm socket) and drives device {@code devid}, which must be a virtio-net. */
    public static NetClient open(Path socket, long devid) throws QueueFault {
        BusClient bus = BusClient.connect(socket, "netclient-" + devid);
        try {
            return new NetClient(bus, devid);
        } catch (RuntimeException | QueueFault e) {
            bus.close();
            throw e;
        }
    }

    /** The device's MAC, as its config space gives it. */
    public byte[] mac() {
        return mac.clone();
    }

    /** Sends an Ethernet frame from this device's MAC to {@code dst}, carrying {@code payload}; waits until the device took it. */
    public void send(byte[] dst, byte[] payload) throws QueueFault {
        byte[] frame = new byte[Math.max(60, 14 + payload.length)];
        System.arraycopy(dst, 0, frame, 0, 6);
        System.arraycopy(mac, 0, frame, 6, 6);
        frame[12] = (byte) (ETHERTYPE >>> 8);
        frame[13] = (byte) ETHERTYPE;
        System.arraycopy(payload, 0, frame, 14, payload.length);
        sendFrame(frame);
    }

    /** Sends a whole Ethernet frame (from whatever source it names); waits until the device took it. */
    public void sendFrame(byte[] frame) throws QueueFault {
        long addr = txBase + (long) (txNext++ % QUEUE) * BUF;
        MemorySegment s = mem.segment(addr, HDR + frame.length);
        s.asSlice(0, HDR).fill((byte) 0);
        MemorySegment.copy(frame, 0, s, ValueLayout.JAVA_BYTE, HDR, frame.length);
        one.clear().readable(addr, HDR + frame.length);
        if (tx.add(one) < 0) throw new IllegalStateException("tx ring full");
        tx.kickIfNeeded();
        if (!tx.awaitUsed(TimeUnit.SECONDS.toNanos(30))) throw new IllegalStateException("the device did not take the frame within 30 s");
        while (tx.pollUsed() >= 0) { }
    }

    /**
     * Breaks virtio-net's rule for tx: offers a tx buffer with a device-writable part after the frame.
     * The device must refuse it (NEEDS_RESET); nothing is waited for.
     */
    public void sendWritableTx() throws QueueFault {
        long addr = txBase + (long) (txNext++ % QUEUE) * BUF;
        mem.segment(addr, HDR + 60).fill((byte) 0);
        BufferList two = new BufferList(2).readable(addr, HDR + 60).writable(addr + 1024, 64);
        if (tx.add(two) < 0) throw new IllegalStateException("tx ring full");
        tx.kickIfNeeded();
    }

    /** The next frame the device delivered, or null if none came within {@code seconds}. The buffer is posted again. */
    public byte[] receive(long seconds) throws QueueFault {
        if (!rx.awaitUsed(TimeUnit.SECONDS.toNanos(seconds))) return null;
        long used = rx.pollUsed();
        if (used < 0) return null;
        int head = SplitVirtqueueDriver.usedId(used);
        long len = SplitVirtqueueDriver.usedLength(used);
        long addr = rxAddrOfHead[head];
        byte[] frame = mem.segment(addr + HDR, len - HDR).toArray(ValueLayout.JAVA_BYTE);
        postRx(addr);
        rx.kickIfNeeded();
        return frame;
    }

    private void postRx(long addr) throws QueueFault {
        one.clear().writable(addr, BUF);
        int head = rx.add(one);
        if (head < 0) throw new IllegalStateException("rx ring full");
        rxAddrOfHead[head] = addr;
    }

    @Override
    public void close() {
        try {
            dev.close();
        } finally {
            bus.close();
            mem.close();
        }
    }
}
