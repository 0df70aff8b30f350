package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * A split ring accesses its areas directly (host addresses, no FFM checks per access) only in global-scope
 * memory (never unmapped, or a connector's mapping that its lifetime keeps mapped while a worker holds it:
 * RingMemoryLifetimeTest), and carries exactly what the checked ring carries; over memory in a closable arena
 * it keeps FFM's checks, so a worker that touches the ring after the arena closed meets an exception.
 */
class SplitRingDirectAccessTest {
    static final long G = 0x10_0000L, MEM = 0x1_0000L;
    static final long DESC = G, AVAIL = G + 0x1000, USED = G + 0x2000, BUF = G + 0x4000;
    static final int SIZE = 64;

    @Test
    void aRingInGlobalScopeMemoryIsAccessedDirectlyAndOneInClosableMemoryIsNot() throws Exception {
        try (Memfd memfd = Memfd.create("direct", MEM)) {
            GuestMemory closable = GuestMemory.of(new MemoryRegion(G, MEM, memfd.segment()));
            GuestMemory global = GuestMemory.of(new MemoryRegion(G, MEM, globalView(memfd.segment())));
            assertThat(SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, global, true, false, true, Notifier.NONE).ring.direct).isTrue();
            assertThat(SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, global, true, false, true, Notifier.NONE).ring.direct).isTrue();
            assertThat(SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, closable, true, false, true, Notifier.NONE).ring.direct).isFalse();
            // native memory the garbage collector frees (an automatic arena) is closable too
            GuestMemory auto = GuestMemory.of(new MemoryRegion(G, MEM, java.lang.foreign.Arena.ofAuto().allocate(MEM, 4096)));
            assertThat(SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, auto, true, false, true, Notifier.NONE).ring.direct).isFalse();
        }
    }

    @Test
    void theDirectRingLeavesTheSameBytesInTheRingAsTheCheckedOne() throws Exception {
        for (boolean inOrder : new boolean[] {false, true}) {
            try (Memfd a = Memfd.create("checked", MEM); Memfd b = Memfd.create("direct", MEM)) {
                MemorySegment checked = a.segment(), direct = globalView(b.segment());
                int[] popsChecked = pump(GuestMemory.of(new MemoryRegion(G, MEM, checked)), inOrder, false);
                int[] popsDirect = pump(GuestMemory.of(new MemoryRegion(G, MEM, direct)), inOrder, true);
                assertThat(popsDirect).containsExactly(popsChecked);
                // descriptor table, both ring areas, indices and event words: byte for byte
                assertThat(direct.asSlice(0, BUF - G).mismatch(checked.asSlice(0, BUF - G))).isEqualTo(-1L);
            }
        }
    }

    @Test
    void aCheckedRingWhoseMemoryWasUnmappedThrowsInsteadOfTouchingIt() throws Exception {
        Memfd memfd = Memfd.create("unmapped", MEM);
        GuestMemory memory = GuestMemory.of(new MemoryRegion(G, MEM, memfd.segment()));
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, memory, true, false, true, Notifier.NONE);
        SplitVirtqueue dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, true, false, true, Notifier.NONE);
        drv.add(BUF, 16, false);
        memfd.close();   // a connector retired the memory under a worker that was left behind
        assertThatThrownBy(() -> dev.pop(dev.newChain())).isInstanceOf(IllegalStateException.class);
    }

    /**
     * 300 buffers of varying lengths through a ring of 64 with EVENT_IDX, the device pushing each with a
     * length of its own and publishing every 7 pushes; returns the heads and lengths the device and the
     * driver saw, in order.
     */
    private static int[] pump(GuestMemory memory, boolean inOrder, boolean expectDirect) throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.NONE);
        SplitVirtqueue dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.NONE);
        assertThat(dev.ring.direct).isEqualTo(expectDirect);
        DescriptorChain chain = dev.newChain();
        int[] seen = new int[4 * 300];
        int n = 0, added = 0, pushed = 0;
        while (pushed < 300) {
            while (added < 300 && drv.freeDescriptors() > 0) {
                drv.addLater(BUF + 64L * (added % SIZE), 16 + added % 48, added % 3 == 0);
                added++;
                if (added % 5 == 0) drv.kickIfNeeded();
            }
            drv.kickIfNeeded();
            if (added % 2 == 0) dev.enableKicks();
            while (dev.pop(chain)) {
                seen[n++] = chain.head();
                seen[n++] = (int) (chain.readableBytes() + chain.writableBytes());
                dev.pushUsed(chain.head(), (int) chain.writableBytes());
                if (++pushed % 7 == 0) dev.publishUsed();
            }
            dev.publishUsed();
            for (long u; (u = drv.pollUsed()) >= 0; ) {
                seen[n++] = SplitVirtqueueDriver.usedId(u);
                seen[n++] = (int) SplitVirtqueueDriver.usedLength(u);
            }
        }
        return java.util.Arrays.copyOf(seen, n);
    }

    /** The same host bytes as a segment of the global scope (the memfd must outlive it: closed after). */
    private static MemorySegment globalView(MemorySegment s) {
        return MemorySegment.ofAddress(s.address()).reinterpret(s.byteSize());
    }
}
