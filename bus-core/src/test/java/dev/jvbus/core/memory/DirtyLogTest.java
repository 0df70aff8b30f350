package dev.jvbus.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.signal.Notifier;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

class DirtyLogTest {

    @Test
    void marksEveryPageOfARangeAndNothingElse() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bits = arena.allocate(16, 8);   // 128 pages
            DirtyLog log = new DirtyLog(bits);
            log.mark(0x1fff, 2);           // straddles pages 1 and 2
            log.mark(0x40000, 1);          // page 64: second word
            log.mark(0x10_0000_0000L, 8);  // beyond the log: not ours to track
            log.mark(0x5000, 0);           // empty
            assertThat(log.isDirty(0x1000)).isTrue();
            assertThat(log.isDirty(0x2000)).isTrue();
            assertThat(log.isDirty(0x3000)).isFalse();
            assertThat(log.isDirty(0x0)).isFalse();
            assertThat(log.isDirty(0x5000)).isFalse();
            // the vhost-user layout: bit page%8 of byte page/8
            assertThat(bits.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 0b110);
            assertThat(bits.get(ValueLayout.JAVA_BYTE, 8)).isEqualTo((byte) 0b1);
            assertThat(log.pagesMarked()).as("pages 1, 2 and 64; nothing beyond the log or for an empty range").isEqualTo(3);
            assertThatThrownBy(() -> new DirtyLog(arena.allocate(12, 8))).hasMessageContaining("8-byte aligned and sized");
        }
    }

    @Test
    void concurrentMarksAreNeverLost() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment bits = arena.allocate(8, 8);    // 64 pages, one word: every mark contends
            DirtyLog log = new DirtyLog(bits);
            Thread even = Thread.ofPlatform().start(() -> { for (int r = 0; r < 2000; r++) for (int p = 0; p < 64; p += 2) log.mark((long) p << 12, 1); });
            Thread odd = Thread.ofPlatform().start(() -> { for (int r = 0; r < 2000; r++) for (int p = 1; p < 64; p += 2) log.mark((long) p << 12, 1); });
            even.join();
            odd.join();
            assertThat(bits.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(-1L);
        }
    }

    @Test
    void deviceWritesThroughGuestMemoryAndTheUsedRingAreLogged() throws Exception {
        try (Memfd mem = Memfd.create("guest", 1 << 20); Arena arena = Arena.ofConfined()) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, 1 << 20, mem.segment()));
            DirtyLog log = new DirtyLog(arena.allocate(32, 8));   // 256 pages = the whole 1 MiB
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, Notifier.NONE);
            BufferList l = new BufferList(1);
            l.writable(0x8000, 64);
            drv.add(l);

            gm.setDirtyLog(log);
            DescriptorChain c = dev.newChain();
            assertThat(dev.pop(c)).isTrue();
            gm.copyToGuest(MemorySegment.ofArray(new byte[64]), 0, 0x8000, 64);
            dev.pushUsed(c.head(), 64);
            dev.publishUsed();
            assertThat(log.isDirty(0x8000)).as("rx data page").isTrue();
            assertThat(log.isDirty(0x3000)).as("used ring page").isTrue();
            assertThat(log.isDirty(0x1000)).as("the descriptor table is the driver's, not written by the device").isFalse();

            gm.setDirtyLog(null);
            gm.copyToGuest(MemorySegment.ofArray(new byte[8]), 0, 0x9000, 8);
            assertThat(log.isDirty(0x9000)).as("no logging once stopped").isFalse();
        }
    }
}
