package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.Memfd;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A ring taken over at a base (vhost-user SET_VRING_BASE) is resumed from what its memory says: the
 * used index and the heads between it and the base. Real memfd-backed guest memory; the driver side
 * puts real buffers on the ring.
 */
class SplitRingResumeTest {
    static final int SIZE = 16;
    static final long DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000, MEM = 1 << 16;

    private final Memfd mem = Memfd.create("resume", MEM);
    private final GuestMemory gm = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));

    @AfterEach
    void close() {
        mem.close();
    }

    @Test
    void theBuffersBetweenTheUsedIndexAndTheBaseAreInFlightOldestFirstAndRestoreCarriesOn() throws QueueFault {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, gm, false, false, false, Notifier.NONE);
        SplitVirtqueue dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, gm, false, false, Notifier.NONE);
        int[] heads = new int[5];
        for (int i = 0; i < 5; i++) heads[i] = drv.add(0x8000 + 64L * i, 64, true);
        DescriptorChain c = dev.newChain();
        for (int i = 0; i < 5; i++) assertThat(dev.pop(c)).isTrue();
        dev.pushUsed(heads[0], 1);
        dev.pushUsed(heads[1], 1);
        dev.publishUsed();   // used idx 2; the device took 5: base 5

        QueueState s = SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, USED, gm, 5, true);
        assertThat(s.nextUsed()).isEqualTo(2);
        assertThat(s.nextAvail()).isEqualTo(5);
        assertThat(s.inFlight()).containsExactly(heads[2], heads[3], heads[4]);
        assertThat(s.eventIdx()).isTrue();

        SplitVirtqueue again = SplitVirtqueue.restore(s, gm, false, Notifier.NONE);
        assertThat(again.pop(c)).isTrue();
        assertThat(c.head()).as("the oldest buffer in flight comes out again first").isEqualTo(heads[2]);
    }

    @Test
    void aBaseMoreThanARingAheadOfTheUsedIndexIsRefused() {
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, USED, gm, SIZE + 1, false))
                .isInstanceOf(QueueFault.class)
                .hasMessageContaining("base 17 is 17 ahead of the used index 0 (ring size 16)")
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(QueueFault.Reason.STATE_MISMATCH));
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, USED, gm, 0x10000, false))
                .hasMessageContaining("not a u16");
    }

    @Test
    void ringAreasOutsideMemoryAreRefusedBeforeAnythingIsRead() {
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, MEM - 8, gm, 0, false))
                .isInstanceOf(QueueFault.class)
                .hasMessageContaining("used ring")
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(QueueFault.Reason.BAD_RING_ADDRESS));
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, SIZE, MEM, AVAIL, USED, gm, 0, false))
                .hasMessageContaining("descriptor table");
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, 12, DESC, AVAIL, USED, gm, 0, false))
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(QueueFault.Reason.BAD_QUEUE_SIZE));
    }
}
