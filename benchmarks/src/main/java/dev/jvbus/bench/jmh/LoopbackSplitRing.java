package dev.jvbus.bench.jmh;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitRingLayout;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A split ring of {@link #QUEUE} entries with both ends on the calling thread (EVENT_IDX and IN_ORDER, no
 * doorbells): one {@link #batch()} is what SplitRingJmh measures and what MetricsCostBench runs with and
 * without meters. The driver copies a message into its slot and adds it (one avail index store per batch),
 * the device pops it, copies it out and pushes it used (one used index store per batch), the driver
 * collects the used buffers. The device's counters are {@link #counters}, bound as a device binds them.
 */
public final class LoopbackSplitRing {
    public static final int BATCH = 64;
    public static final int QUEUE = 256;

    public final QueueCounters counters = new QueueCounters();
    private final SplitVirtqueueDriver driver;
    private final SplitVirtqueue device;
    private final DescriptorChain chain;
    private final MemorySegment memory, msg, copy;
    private final long slots;
    private final int size, slotSize;
    private int nextSlot;
    private long sum;

    public LoopbackSplitRing(int size) throws QueueFault {
        this.size = size;
        SplitRingLayout l = SplitRingLayout.of(QUEUE);
        long desc = 0, avail = align(desc + l.descTableBytes()), used = align(avail + l.availRingBytes());
        slots = align(used + l.usedRingBytes());
        slotSize = (int) ((size + 15) & -16L);
        long bytes = align(slots + (long) QUEUE * slotSize);
        memory = Arena.ofAuto().allocate(bytes, 4096);
        GuestMemory gm = GuestMemory.of(new MemoryRegion(0, bytes, memory));
        driver = SplitVirtqueueDriver.create(0, QUEUE, desc, avail, used, gm, true, false, true, Notifier.NONE);
        device = SplitVirtqueue.create(0, QUEUE, desc, avail, used, gm, true, false, true, Notifier.NONE, counters);
        chain = device.newChain();
        msg = Arena.ofAuto().allocate(size, 8);
        copy = MemorySegment.ofArray(new byte[size]);
    }

    private static long align(long v) {
        return (v + 63) & -64L;
    }

    /** {@link #BATCH} messages through the ring and back; returns a checksum the JIT cannot drop. */
    public long batch() throws QueueFault {
        for (int i = 0; i < BATCH; i++) {
            msg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, i);
            long addr = slots + (long) (nextSlot++ & (QUEUE - 1)) * slotSize;
            MemorySegment.copy(msg, 0, memory, addr, size);
            driver.addLater(addr, size, false);
        }
        driver.kickIfNeeded();
        while (device.pop(chain)) {
            MemorySegment.copy(chain.segment(0), chain.offset(0), copy, 0, (int) chain.length(0));
            sum += copy.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            device.pushUsed(chain.head(), 0);
        }
        device.publishUsed();
        while (driver.pollUsed() >= 0) { }
        return sum;
    }
}
