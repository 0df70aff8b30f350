package dev.jvbus.bench.jmh;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitRingLayout;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * In-process, single-thread cost of one message through a virtio split ring, both ends on one thread
 * (AgronaRingJmh's counterpart): the driver copies a message into its slot and adds it (one avail
 * index store per batch of {@link #BATCH}), the device pops it, copies it out and pushes it used
 * (one used index store per batch), the driver collects the used buffers. No cross-core traffic, so
 * this is the rings' own bookkeeping plus two copies, and far steadier than the two-process
 * RingBench on a shared machine: the figure to compare two versions of the ring code by.
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/jvbus-benchmarks.jar
 * org.openjdk.jmh.Main SplitRingJmh -f 1 -wi 3 -i 3}
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SplitRingJmh {
    static final int BATCH = 64;
    static final int QUEUE = 256;

    @Param({"16", "1500"})
    int size;

    SplitVirtqueueDriver driver;
    SplitVirtqueue device;
    DescriptorChain chain;
    MemorySegment memory;
    MemorySegment msg;
    MemorySegment copy;
    long slots;
    int slotSize;
    int nextSlot;
    long sum;

    @Setup
    public void setup() throws QueueFault {
        SplitRingLayout l = SplitRingLayout.of(QUEUE);
        long desc = 0, avail = align(desc + l.descTableBytes()), used = align(avail + l.availRingBytes());
        slots = align(used + l.usedRingBytes());
        slotSize = (int) ((size + 15) & -16L);
        long bytes = align(slots + (long) QUEUE * slotSize);
        memory = Arena.ofAuto().allocate(bytes, 4096);
        GuestMemory gm = GuestMemory.of(new MemoryRegion(0, bytes, memory));
        driver = SplitVirtqueueDriver.create(0, QUEUE, desc, avail, used, gm, true, false, true, Notifier.NONE);
        device = SplitVirtqueue.create(0, QUEUE, desc, avail, used, gm, true, false, true, Notifier.NONE);
        chain = device.newChain();
        msg = Arena.ofAuto().allocate(size, 8);
        copy = MemorySegment.ofArray(new byte[size]);
    }

    private static long align(long v) {
        return (v + 63) & -64L;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
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
