package dev.jvbus.connector.shm.soak;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;

/**
 * One soak client in its own JVM: {@code <socket> <devid> <sink-mac> <frames>} connects, opens its virtio-net
 * device, negotiates, shares memory, sets up both rings and starts the device, then sends {@code frames} 60-byte
 * frames to the sink as fast as its tx ring takes them (the bus may drop none: the sink takes all), and leaves
 * cleanly. The soak may SIGKILL it at any point before that.
 */
public final class SoakClientProcess {
    static final long GUEST_BASE = 0x4000_0000L;
    static final int RING = 256, HDR = 12, FRAME = 60;

    public static void main(String[] args) throws Exception {
        Path socket = Path.of(args[0]);
        DevId devid = DevId.parse(args[1]);
        long sink = Long.parseLong(args[2]);
        long frames = Long.parseLong(args[3]);
        try (BusClient bus = BusClient.connect(socket, "soak-" + ProcessHandle.current().pid())) {
            ClientDevice dev = bus.open(devid);
            dev.negotiate(VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask() | (1L << 5));
            byte[] mac = dev.readConfig(0, 6);
            DriverMemory mem = dev.shareMemory("soak-" + devid.unsigned(), 2L << 20, GUEST_BASE);
            List<ClientQueue> qs = dev.setUpQueues(mem, RING, RING);
            ClientQueue tx = qs.get(1);
            long buffers = mem.allocate((long) RING * 128, 64);
            MemorySegment seg = mem.memfd().segment();
            dev.driverOk();
            System.out.println("LIVE");
            System.out.flush();
            BufferList one = new BufferList(1);
            int[] free = new int[RING];
            int freeCount = 0;
            for (int s = 0; s < RING; s++) free[freeCount++] = s;
            int[] slotOf = new int[RING];
            for (long n = 0; n < frames; ) {
                for (long e; (e = tx.pollUsed()) != -1; ) free[freeCount++] = slotOf[SplitVirtqueueDriver.usedId(e)];
                if (freeCount == 0) {
                    tx.awaitUsed(1_000_000);
                    continue;
                }
                int slot = free[--freeCount];
                long at = buffers + slot * 128L, o = at - GUEST_BASE;
                seg.asSlice(o, HDR + FRAME).fill((byte) 0);
                for (int i = 0; i < 6; i++) seg.set(ValueLayout.JAVA_BYTE, o + HDR + i, (byte) (sink >>> (8 * (5 - i))));
                MemorySegment.copy(mac, 0, seg, ValueLayout.JAVA_BYTE, o + HDR + 6, 6);
                seg.set(ValueLayout.JAVA_BYTE, o + HDR + 12, (byte) 0x88);
                seg.set(ValueLayout.JAVA_BYTE, o + HDR + 13, (byte) 0xb5);
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED, o + HDR + 14, n);
                int head = tx.add(one.clear().readable(at, HDR + FRAME));
                if (head < 0) throw new IllegalStateException("tx ring full with a free slot");
                slotOf[head] = slot;
                tx.kickIfNeeded();
                n++;
            }
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (tx.driver().outstanding() > 0 && System.nanoTime() < deadline) {
                if (tx.pollUsed() == -1) tx.awaitUsed(1_000_000);
            }
            System.out.println("DONE " + frames);
        }
    }
}
