package dev.jvbus.app.fleet;

import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.client.MovableDevice;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.concurrent.locks.LockSupport;

/**
 * A host process's virtio-net driver on the shm client library, streaming numbered frames
 * ({@link StreamFrame}) through its device. It holds the device as a {@link MovableDevice}: when the
 * bus moves the device (MOVED), the library reopens it on the other bus with the same memory, rings
 * and doorbells, and this sender's thread never stops or renegotiates.
 */
final class StreamSender implements AutoCloseable {
    static final long FEATURES = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask() | VirtioNetFeatures.MAC.mask();
    static final int HDR = 12, BUF = 2048, RING = 256;
    static final long GUEST_BASE = 0x4000_0000L;

    final MovableDevice device;
    final long negotiated;
    final long mac;
    private final DriverMemory mem;
    private final MemorySegment seg;
    private final ClientQueue tx;
    private final long txBase;
    private final int[] txSlotOfHead = new int[RING];
    private final BufferList one = new BufferList(1);
    private volatile Thread worker;
    private volatile boolean stop;
    private volatile Throwable failure;
    private volatile long sent;

    StreamSender(Path socket, long devid, MovableDevice.MoveListener listener) {
        this.device = MovableDevice.open(socket, new DevId((int) devid), "stream-" + devid, listener);
        ClientDevice d = device.device();
        this.negotiated = d.negotiate(FEATURES);
        this.mac = MacAddress.fromBytes(d.readConfig(VirtioNetModel.CONFIG_MAC, 6));
        this.mem = d.shareMemory("stream-" + devid, 2L << 20, GUEST_BASE);
        this.seg = mem.memfd().segment();
        List<ClientQueue> qs = d.setUpQueues(mem, RING, RING);
        this.tx = qs.get(1);
        this.txBase = mem.allocate((long) RING * BUF, 64);
        d.driverOk();
    }

    /**
     * Sends frames on a thread of its own until {@link #stop()}, never more than {@code window} ahead
     * of {@code acknowledged} (the next sequence number the peer waits for), so nothing is dropped for
     * want of room anywhere on the way.
     */
    void start(LongSupplier acknowledged, int window) {
        int[] free = new int[RING];
        int[] freeCount = {0};
        for (int s = RING - 1; s >= 0; s--) free[freeCount[0]++] = s;
        worker = Thread.ofPlatform().daemon().name("stream-sender").start(() -> {
            try {
                long n = 0;
                while (!stop) {
                    for (long e; (e = tx.pollUsed()) != -1; ) free[freeCount[0]++] = txSlotOfHead[SplitVirtqueueDriver.usedId(e)];
                    if (n - acknowledged.getAsLong() >= window || freeCount[0] == 0) {
                        LockSupport.parkNanos(50_000);
                        continue;
                    }
                    int slot = free[--freeCount[0]];
                    long a = txBase + (long) slot * BUF;
                    long o = a - GUEST_BASE;
                    seg.asSlice(o, HDR).fill((byte) 0);
                    StreamFrame.write(seg, o + HDR, mac, n);
                    int head = tx.add(one.clear().readable(a, HDR + StreamFrame.LENGTH));
                    if (head < 0) throw new AssertionError("tx ring full");
                    txSlotOfHead[head] = slot;
                    tx.kickIfNeeded();
                    sent = ++n;
                }
            } catch (QueueFault | RuntimeException | AssertionError f) {
                failure = f;
            }
        });
    }

    long sent() { return sent; }

    Throwable failure() { return failure; }

    /** Stops sending; returns how many frames were sent. */
    long stop() throws InterruptedException {
        stop = true;
        Thread w = worker;
        if (w != null) w.join(TimeUnit.SECONDS.toMillis(30));
        return sent;
    }

    @Override
    public void close() {
        try {
            stop();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        device.close();
        mem.close();
    }
}
