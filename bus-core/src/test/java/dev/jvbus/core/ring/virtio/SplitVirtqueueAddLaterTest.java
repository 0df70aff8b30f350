package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link SplitVirtqueueDriver#addLater}: staged buffers reach the device at publishAvail or kickIfNeeded, in order. */
class SplitVirtqueueAddLaterTest {
    static final long G = 0x30_0000L, MEM = 0x1_0000L;
    static final long DESC = G, AVAIL = G + 0x100, USED = G + 0x200, BUF = G + 0x4000;

    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void stagedBuffersAreVisibleOnlyOncePublished(boolean inOrder) throws QueueFault {
        try (Memfd memfd = Memfd.create("add-later", MEM); EventFd kick = EventFd.create()) {
            GuestMemory memory = GuestMemory.of(new MemoryRegion(G, MEM, memfd.segment()));
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 8, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.of(kick));
            SplitVirtqueue dev = SplitVirtqueue.create(0, 8, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.NONE);
            DescriptorChain c = dev.newChain();
            dev.enableKicks();
            int h0 = drv.addLater(BUF, 16, false);
            int h1 = drv.addLater(BUF + 16, 32, true);
            assertThat(drv.outstanding()).isEqualTo(2);
            assertThat(dev.hasAvailable()).isFalse();           // staged, not published
            assertThat(dev.pop(c)).isFalse();
            drv.publishAvail();
            assertThat(dev.pop(c)).isTrue();
            assertThat(c.head()).isEqualTo(h0);
            assertThat(c.readableBytes()).isEqualTo(16);
            assertThat(dev.pop(c)).isTrue();
            assertThat(c.head()).isEqualTo(h1);
            assertThat(c.writableBytes()).isEqualTo(32);
            dev.enableKicks();
            int h2 = drv.addLater(BUF + 64, 8, false);
            assertThat(dev.hasAvailable()).isFalse();
            assertThat(drv.kickIfNeeded()).isTrue();            // publishes, then kicks: the device asked for it
            assertThat(kick.drain()).isEqualTo(1);
            assertThat(dev.pop(c)).isTrue();
            assertThat(c.head()).isEqualTo(h2);
            for (int h : new int[] {h0, h1, h2}) dev.pushUsed(h, 0);
            dev.publishUsed();
            int n = 0;
            while (drv.pollUsed() >= 0) n++;
            assertThat(n).isEqualTo(3);
            assertThat(drv.freeDescriptors()).isEqualTo(8);
        }
    }

    /**
     * Added and pushed buffers are counted once per publish (not per buffer), but the accessors still count
     * the staged and the unpublished ones, and a wrap of the u16 indices changes nothing.
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void countersIncludeStagedAndUnpublishedBuffersAcrossIndexWraps(boolean inOrder) throws QueueFault {
        try (Memfd memfd = Memfd.create("add-later-counts", MEM); EventFd kick = EventFd.create()) {
            GuestMemory memory = GuestMemory.of(new MemoryRegion(G, MEM, memfd.segment()));
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 8, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.of(kick));
            SplitVirtqueue dev = SplitVirtqueue.create(0, 8, DESC, AVAIL, USED, memory, true, false, inOrder, Notifier.NONE);
            DescriptorChain c = dev.newChain();
            long total = 0;
            for (int round = 0; round < 70_000 / 5; round++) {   // 5 buffers a round: the u16 indices wrap
                for (int k = 0; k < 5; k++) drv.addLater(BUF + 16L * k, 16, true);
                assertThat(drv.buffersAdded()).isEqualTo(total + 5);   // staged, counted
                drv.publishAvail();
                assertThat(drv.buffersAdded()).isEqualTo(total + 5);
                for (int k = 0; k < 5; k++) {
                    assertThat(dev.pop(c)).isTrue();
                    dev.pushUsed(c.head(), 16);
                }
                assertThat(dev.buffersPushed()).isEqualTo(total + 5);   // pushed, not published: counted
                long before = dev.counters().buffers();
                dev.publishUsed();
                assertThat(dev.counters().buffers() - before).isEqualTo(5);
                assertThat(dev.buffersPushed()).isEqualTo(total + 5);
                assertThat(drv.collectUsed()).isEqualTo(5);
                total += 5;
            }
            assertThat(drv.buffersCollected()).isEqualTo(total);
        }
    }
}
