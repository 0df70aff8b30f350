package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.Memfd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** {@link SplitVirtqueue#unpop}: undoing the newest pops, before and after a restore. */
class SplitVirtqueueUnpopTest {
    static final long G = 0x10_0000L, MEM = 0x1_0000L;
    static final int SIZE = 8;
    static final long DESC = G, AVAIL = G + 0x100, USED = G + 0x200, BUF = G + 0x1000;

    // Each test: a driver and a device on one ring of SIZE entries in a memfd of its own (EVENT_IDX, no IN_ORDER).
    private Memfd m;
    private GuestMemory mem;
    private SplitVirtqueueDriver drv;
    private SplitVirtqueue dev;

    @BeforeEach
    void ring() throws Exception {
        m = Memfd.create("unpop", MEM);
        mem = GuestMemory.of(new MemoryRegion(G, MEM, m.segment()));
        drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, mem, true, false, false, Notifier.NONE);
        dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, mem, true, false, Notifier.NONE);
    }

    @AfterEach
    void close() {
        m.close();
    }

    @Test
    void unpoppedBuffersComeBackInOrderAndAreNotInFlight() throws Exception {
        BufferList b = new BufferList(1);
        int h0 = drv.add(b.clear().writable(BUF, 100));
        int h1 = drv.add(b.clear().writable(BUF + 100, 200));
        DescriptorChain c = dev.newChain();

        assertThat(dev.pop(c)).isTrue();
        assertThat(dev.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h1);
        dev.unpop(h1);
        dev.unpop(h0);
        assertThat(dev.inFlightCount()).isZero();
        assertThat(dev.save().inFlight()).isEmpty();
        assertThatThrownBy(() -> dev.unpop(h0)).isInstanceOf(IllegalArgumentException.class);

        assertThat(dev.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h0);
        assertThat(c.writableBytes()).isEqualTo(100);
        assertThat(dev.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h1);
        assertThat(dev.pop(c)).isFalse();

        // After a restore the in-flight heads go out first; undoing one keeps it in flight.
        QueueState saved = dev.save();
        SplitVirtqueue restored = SplitVirtqueue.restore(saved, mem, false, Notifier.NONE);
        assertThat(restored.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h0);
        restored.unpop(h0);
        assertThat(restored.save()).isEqualTo(saved);
        assertThat(restored.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h0);
        restored.pushUsed(h0, 0);
        assertThat(restored.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h1);
        restored.pushUsed(h1, 0);
        int h2 = drv.add(b.clear().writable(BUF + 300, 50));
        assertThat(restored.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h2);
        restored.unpop(h2);                                   // a ring pop again, after the restored ones
        assertThat(restored.pop(c)).isTrue();
        assertThat(c.head()).isEqualTo(h2);
    }
    /**
     * {@link SplitVirtqueue#buffersPopped} is exact at any moment although the ring's pops are added to it once per
     * window of the available ring: within a window, after an undone pop on either side of a window's start, and past
     * 2^16 pops (the u16 index wraps many times).
     */
    @Test
    void buffersPoppedCountsEveryPopLessTheUndoneOnesAcrossWindowsAndIndexWraps() throws Exception {
        BufferList b = new BufferList(1);
        DescriptorChain c = dev.newChain();
        long expected = 0;
        for (int round = 0; round < 50_000; round++) {
            int n = 1 + round % SIZE;                         // windows of 1..SIZE buffers
            for (int k = 0; k < n; k++) drv.add(b.clear().writable(BUF + 64L * k, 64));
            for (int k = 0; k < n; k++) {
                assertThat(dev.pop(c)).isTrue();
                expected++;
                if (round % 7 == 0 && (k == 0 || k == n - 1)) {   // undone at a window's first and last buffer
                    dev.unpop(c.head());
                    expected--;
                    assertThat(dev.buffersPopped()).isEqualTo(expected);
                    assertThat(dev.pop(c)).isTrue();
                    expected++;
                }
                assertThat(dev.buffersPopped()).isEqualTo(expected);
                dev.pushUsed(c.head(), 0);
            }
            assertThat(dev.pop(c)).isFalse();
            dev.publishUsed();
            while (drv.pollUsed() >= 0) { }
        }
        assertThat(expected).isGreaterThan(3 * 65_536L);
        assertThat(dev.buffersPopped()).isEqualTo(expected);
        assertThat(dev.buffersPushed()).isEqualTo(expected);
    }
}
