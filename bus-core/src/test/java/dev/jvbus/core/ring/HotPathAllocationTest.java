package dev.jvbus.core.ring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.DirtyLog;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.ioq.IoqDevice;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.ring.virtio.SplitRingResume;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.Memfd;
import java.lang.management.ManagementFactory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * "The hot path does no allocation": both sides of both rings, driven buffer by buffer in one
 * thread, allocate nothing per buffer. The JVM's own per-thread allocation counter is read around a
 * long run after a warm-up; the bound is a few KiB whatever the number of buffers, where one object
 * per buffer would be megabytes.
 */
class HotPathAllocationTest {
    static final int BUFFERS = 200_000;
    static final long BOUND = 16 * 1024;

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void theSplitRingAllocatesNothingPerBuffer() throws Exception {
        try (Memfd mem = Memfd.create("alloc-split", 1 << 20)) {
            GuestMemory checked = GuestMemory.of(new MemoryRegion(0, 1 << 20, mem.segment()));
            // The same memory in the global scope: the ring accesses its areas directly (SplitRing#direct).
            GuestMemory direct = GuestMemory.of(new MemoryRegion(0, 1 << 20,
                    MemorySegment.ofAddress(mem.segment().address()).reinterpret(1 << 20)));
            // Also while migrating: every used-ring write is then marked in a dirty log.
            DirtyLog log = new DirtyLog(MemorySegment.ofArray(new long[4]));
            for (int run = 0; run < 8; run++) {
                boolean inOrder = (run & 1) != 0, logging = (run & 2) != 0;
                GuestMemory gm = run >= 4 ? direct : checked;
                gm.setDirtyLog(logging ? log : null);
                SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 256, 0x1000, 0x3000, 0x4000, gm, true, false, inOrder, Notifier.NONE);
                SplitVirtqueue dev = SplitVirtqueue.create(0, 256, 0x1000, 0x3000, 0x4000, gm, true, false, inOrder, Notifier.NONE);
                DescriptorChain chain = dev.newChain();
                MemorySegment scratch = MemorySegment.ofArray(new byte[64]);
                pumpSplit(drv, dev, chain, scratch, 20_000);            // warm-up: let the JIT compile
                long before = allocated();
                pumpSplit(drv, dev, chain, scratch, BUFFERS);
                long bytes = allocated() - before;
                System.out.printf("split ring (inOrder=%s, logging=%s, direct=%s): %d bytes allocated for %d buffers%n",
                        inOrder, logging, run >= 4, bytes, BUFFERS);
                assertThat(bytes).as("bytes allocated for " + BUFFERS + " buffers").isLessThan(BOUND);
            }
        }
    }

    @Test
    void theSplitRingRecordingItsHeadsInFlightAllocatesNothingPerBuffer() throws Exception {
        // vhost-user INFLIGHT_SHMFD: every pop, push and publish also writes the inflight record (a memfd).
        try (Memfd mem = Memfd.create("alloc-split-inflight", 1 << 20);
             Memfd record = Memfd.create("alloc-inflight", SplitInflightLog.bytesFor(256))) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, 1 << 20, mem.segment()));
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 256, 0x1000, 0x3000, 0x4000, gm, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, 256, 0x1000, 0x3000, 0x4000, gm, true, false, false, Notifier.NONE);
            dev.trackInflight(SplitRingResume.fromInflight(0, 256, 0x1000, 0x3000, 0x4000, gm, 0, true,
                    record.segment()).log());
            DescriptorChain chain = dev.newChain();
            MemorySegment scratch = MemorySegment.ofArray(new byte[64]);
            pumpSplit(drv, dev, chain, scratch, 20_000);
            long before = allocated();
            pumpSplit(drv, dev, chain, scratch, BUFFERS);
            long bytes = allocated() - before;
            System.out.printf("split ring recording inflight heads: %d bytes allocated for %d buffers%n", bytes, BUFFERS);
            assertThat(bytes).as("bytes allocated for " + BUFFERS + " buffers").isLessThan(BOUND);
        }
    }

    private static void pumpSplit(SplitVirtqueueDriver drv, SplitVirtqueue dev, DescriptorChain chain, MemorySegment scratch, int n)
            throws QueueFault {
        for (int i = 0; i < n; i++) {
            if (drv.add(0x8000 + (i & 63) * 64L, 64, false) < 0) throw new AssertionError("ring full at " + i);
            drv.kickIfNeeded();
            if (!dev.pop(chain)) throw new AssertionError("nothing to pop at " + i);
            MemorySegment.copy(chain.segment(0), chain.offset(0), scratch, 0, 64);
            dev.pushUsed(chain.head(), 0);
            dev.publishUsed();
            if (drv.pollUsed() < 0) throw new AssertionError("nothing used at " + i);
        }
    }

    @Test
    void theIoqRingAllocatesNothingPerBuffer() throws Exception {
        try (Memfd mem = Memfd.create("alloc-ioq", 1 << 20)) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, 1 << 20, mem.segment()));
            IoqDriver drv = IoqDriver.create(0, gm, 0x1000, 256, Notifier.NONE, true);
            IoqDevice dev = IoqDevice.attach(0, gm, 0x1000, 256, Notifier.NONE, true);
            long[] completed = new long[1];
            IoqDriver.CompletionSink sink = (cookie, len) -> completed[0]++;
            MemorySegment scratch = MemorySegment.ofArray(new byte[64]);
            pumpIoq(drv, dev, sink, scratch, 20_000);
            long before = allocated();
            pumpIoq(drv, dev, sink, scratch, BUFFERS);
            long bytes = allocated() - before;
            System.out.printf("IOQ ring: %d bytes allocated for %d buffers%n", bytes, BUFFERS);
            assertThat(completed[0]).isEqualTo(20_000L + BUFFERS);
            assertThat(bytes).as("bytes allocated for " + BUFFERS + " buffers").isLessThan(BOUND);
        }
    }

    private static void pumpIoq(IoqDriver drv, IoqDevice dev, IoqDriver.CompletionSink sink, MemorySegment scratch, int n)
            throws QueueFault {
        for (int i = 0; i < n; i++) {
            if (!drv.offer(i, 0x10_000 + (i & 63) * 64L, 64)) throw new AssertionError("ring full at " + i);
            drv.kick();
            IoqDevice.Buffer b = dev.poll();
            if (b == null) throw new AssertionError("nothing to poll at " + i);
            MemorySegment.copy(b.segment(), b.offset(), scratch, 0, 64);
            dev.complete(64);
            dev.notifyDriver();
            if (drv.reap(sink, 16) != 1) throw new AssertionError("nothing reaped at " + i);
        }
        scratch.get(ValueLayout.JAVA_BYTE, 0);
    }
}
