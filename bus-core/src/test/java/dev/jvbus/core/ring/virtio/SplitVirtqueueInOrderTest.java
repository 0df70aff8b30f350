package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * VIRTIO_F_IN_ORDER on both sides of a split ring, in a real memfd: descriptors used round-robin and
 * freed in order, a batch of pushes returned as one used element (id of its newest buffer, at the
 * batch's first used slot), lengths of implicitly used buffers, the device refusing an out-of-order
 * push, the driver refusing a malformed used element, and save/restore.
 */
class SplitVirtqueueInOrderTest {
    static final long G = 0x20_0000L;
    static final long MEM = 0x1_0000L;
    static final int SIZE = 8;
    static final long DESC = G, AVAIL = G + 0x100, USED = G + 0x200;
    static final long BUF = G + 0x4000;

    Memfd memfd;
    MemorySegment seg;
    GuestMemory memory;
    EventFd call;
    SplitVirtqueueDriver drv;
    SplitVirtqueue dev;
    DescriptorChain chain;
    final BufferList list = new BufferList(4);

    @BeforeEach
    void setUp() throws QueueFault {
        memfd = Memfd.create("in-order", MEM);
        seg = memfd.segment();
        memory = GuestMemory.of(new MemoryRegion(G, MEM, seg));
        call = EventFd.create();
        drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, memory, true, true, true, Notifier.NONE);
        dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, true, true, true, Notifier.of(call));
        chain = dev.newChain();
    }

    @AfterEach
    void tearDown() {
        call.close();
        memfd.close();
    }

    /** A chain of one readable segment and {@code writable} writable segments of 100 bytes each. */
    private int add(int writable) throws QueueFault {
        list.clear().readable(BUF, 10);
        for (int k = 0; k < writable; k++) list.writable(BUF + 0x100 * (k + 1), 100);
        return drv.add(list);
    }

    private int usedIdx() { return seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, USED - G + USED_IDX) & 0xffff; }

    private int usedElemId(int slot) { return seg.get(ValueLayout.JAVA_INT_UNALIGNED, USED - G + usedElemOffset(slot)); }

    private void writeUsed(int slot, int id, int len, int idx) {
        seg.set(ValueLayout.JAVA_INT_UNALIGNED, USED - G + usedElemOffset(slot) + USED_ELEM_ID, id);
        seg.set(ValueLayout.JAVA_INT_UNALIGNED, USED - G + usedElemOffset(slot) + USED_ELEM_LEN, len);
        seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, USED - G + USED_IDX, (short) idx);
    }

    @Test
    void descriptorsAreUsedRoundRobinAndABatchIsOneUsedElement() throws QueueFault {
        assertThat(add(0)).isEqualTo(0);         // 1 descriptor
        assertThat(add(1)).isEqualTo(1);         // 2 descriptors: 1, 2
        assertThat(add(2)).isEqualTo(3);         // 3 descriptors: 3, 4, 5
        assertThat(drv.freeDescriptors()).isEqualTo(2);
        List<Integer> heads = new ArrayList<>();
        while (dev.pop(chain)) {
            heads.add(chain.head());
            dev.pushUsed(chain.head(), (int) chain.writableBytes());   // whole writable length: batchable
        }
        assertThat(heads).containsExactly(0, 1, 3);
        seg.set(ValueLayout.JAVA_INT_UNALIGNED, USED - G + usedElemOffset(1), 0x7777);   // slots 1, 2 are not written
        dev.publishUsed();
        assertThat(usedIdx()).isEqualTo(3);
        assertThat(usedElemId(0)).isEqualTo(3);  // one element: the newest buffer, at the batch's first slot
        assertThat(usedElemId(1)).isEqualTo(0x7777);
        assertThat(poll()).containsExactly(0L << 32 | 0, 1L << 32 | 100, 3L << 32 | 200);
        assertThat(drv.freeDescriptors()).isEqualTo(SIZE);
        assertThat(add(2)).isEqualTo(6);         // wraps: 6, 7, 0
        assertThat(add(0)).isEqualTo(1);
        assertThat(dev.pop(chain)).isTrue();
        assertThat(chain.head()).isEqualTo(6);
        assertThat(chain.count()).isEqualTo(3);
        assertThat(chain.address(2)).isEqualTo(BUF + 0x200);
    }

    @Test
    void aShortLengthEndsTheBatchAndEveryLengthArrives() throws QueueFault {
        for (int i = 0; i < 5; i++) add(1);      // 2 descriptors each: heads 0, 2, 4, 6, then no room
        assertThat(add(1)).isEqualTo(-1);
        int[] lens = {100, 7, 100, 100};
        for (int len : lens) {
            assertThat(dev.pop(chain)).isTrue();
            dev.pushUsed(chain.head(), len);
        }
        dev.publishUsed();
        assertThat(usedIdx()).isEqualTo(4);
        assertThat(usedElemId(0)).isEqualTo(2);  // batch 0..2 ended by the short length
        assertThat(usedElemId(2)).isEqualTo(6);  // batch 4..6 published as one element
        assertThat(poll()).containsExactly(0L << 32 | 100, 2L << 32 | 7, 4L << 32 | 100, 6L << 32 | 100);
    }

    @Test
    void theDeviceRefusesAnOutOfOrderPush() throws QueueFault {
        add(0);
        add(0);
        dev.pop(chain);
        int first = chain.head();
        dev.pop(chain);
        assertThatThrownBy(() -> dev.pushUsed(chain.head(), 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("IN_ORDER");
        dev.pushUsed(first, 0);
        dev.pushUsed(chain.head(), 0);
        dev.publishUsed();
        assertThat(poll()).hasSize(2);
    }

    @Test
    void aManyWrapStreamKeepsOrderAndFreesEveryDescriptor() throws QueueFault {
        long collected = 0, expectHead = 0;
        int added = 0;
        for (int round = 0; round < 5000; round++) {
            while (add(round % 3) >= 0) added++;
            int pushes = 0;
            while (dev.pop(chain)) {
                // now and then a short length (which ends a batch), never more than the buffer holds
                int full = (int) chain.writableBytes();
                dev.pushUsed(chain.head(), (round + pushes++) % 4 == 0 ? Math.min(1, full) : full);
                if (round % 2 == 0) dev.publishUsed();   // vary the batch size
            }
            dev.publishUsed();
            long e;
            while ((e = drv.pollUsed()) >= 0) {
                collected++;
                expectHead = SplitVirtqueueDriver.usedId(e);
            }
            assertThat(drv.freeDescriptors()).isEqualTo(SIZE);
        }
        assertThat(collected).isEqualTo(added).isEqualTo(drv.buffersCollected());
        assertThat(drv.isStopped()).isFalse();
        assertThat(expectHead).isBetween(0L, (long) SIZE - 1);
    }

    @Test
    void collectUsedFreesWholeBatchesAtOnceAndChecksTheirElementsLikePollUsed() throws QueueFault {
        for (int i = 0; i < 4; i++) add(1);      // heads 0, 2, 4, 6: 8 descriptors, none free
        int[] lens = {100, 7, 100, 100};         // the short length ends a batch: elements at slots 0 (id 2) and 2 (id 6)
        for (int len : lens) {
            assertThat(dev.pop(chain)).isTrue();
            dev.pushUsed(chain.head(), len);
        }
        assertThat(drv.collectUsed()).as("nothing published yet").isZero();
        dev.publishUsed();
        assertThat(drv.collectUsed()).isEqualTo(4);
        assertThat(drv.freeDescriptors()).isEqualTo(SIZE);
        assertThat(drv.buffersCollected()).isEqualTo(4);
        assertThat(drv.outstanding()).isZero();
        assertThat(drv.collectUsed()).isZero();
        // A device that names a buffer not in flight stops the driver here as it does in pollUsed.
        add(0);
        add(0);                                  // heads 0, 1 (round robin from 8 = 0)
        writeUsed(4, 5, 0, 5);                   // 5 was never added
        assertThatThrownBy(drv::collectUsed).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.BAD_USED_ID));
        assertThat(drv.isStopped()).isTrue();
    }

    @Test
    void aUsedIdNotInFlightStopsTheDriver() throws QueueFault {
        add(0);
        add(0);
        writeUsed(0, 5, 0, 1);                   // 5 was never added
        assertBadUsedId();
    }

    @Test
    void aUsedIdBeyondThePublishedIndexStopsTheDriver() throws QueueFault {
        add(0);
        add(0);
        add(0);                                  // heads 0, 1, 2
        writeUsed(0, 2, 0, 2);                   // a batch up to head 2 is 3 buffers; the index says 2
        assertBadUsedId();
    }

    @Test
    void aUsedIdOfAnImplicitlyUsedBufferStopsTheDriver() throws QueueFault {
        add(0);
        add(0);
        add(0);
        writeUsed(0, 1, 0, 2);                   // batch 0..1: fine
        assertThat(poll()).hasSize(2);
        writeUsed(2, 1, 0, 3);                   // 1 is no longer in flight
        assertBadUsedId();
    }

    /**
     * collectUsed frees a batch the device returned as one element in one pass, including a batch of chains of
     * different lengths that runs over the table's end and over the ring's: the table is then whole again, and
     * the next adds take their descriptors round-robin from there.
     */
    @Test
    void collectUsedFreesABatchOverTheRingsEndInOneStep() throws QueueFault {
        for (int i = 0; i < 5; i++) add(0);      // positions 0..4, descriptors 0..4
        drain();
        assertThat(drv.collectUsed()).isEqualTo(5);
        assertThat(add(1)).isEqualTo(5);         // position 5: descriptors 5, 6
        assertThat(add(0)).isEqualTo(7);         // position 6: descriptor 7
        assertThat(add(2)).isEqualTo(0);         // position 7: descriptors 0, 1, 2
        assertThat(add(0)).isEqualTo(3);         // position 8 (slot 0): descriptor 3
        assertThat(drv.freeDescriptors()).isEqualTo(1);
        drain();                                 // one batch: one element, id 3, at used slot 5
        assertThat(usedIdx()).isEqualTo(9);
        assertThat(usedElemId(5)).isEqualTo(3);
        assertThat(drv.collectUsed()).isEqualTo(4);
        assertThat(drv.freeDescriptors()).isEqualTo(SIZE);
        assertThat(drv.outstanding()).isZero();
        assertThat(add(2)).isEqualTo(4);         // round-robin goes on: 4, 5, 6
    }

    /**
     * A used id's u16 add position comes back into the window 2^16 adds later: a head added there long ago, and
     * never since (round-robin made it a chain's second descriptor), must not be taken for the buffer in flight
     * at that position (main clears the head's flag when it is collected; a driver that tells in flight by
     * position, as tried in cpumsg4, must also compare the head added there).
     */
    @Test
    void aUsedIdAddedLongAgoIsNotTakenForInFlightWhenItsPositionComesBack() throws QueueFault {
        assertThat(add(0)).isEqualTo(0);         // head 0 at position 0
        drain();
        assertThat(drv.collectUsed()).isEqualTo(1);
        for (int p = 1; p < 0x1_0000; p++) {     // chains of 2 from descriptor 1: heads 1, 3, 5, 7, never 0 again
            assertThat(add(1)).isOdd();
            drain();
            assertThat(drv.collectUsed()).isEqualTo(1);
        }
        int head = add(1);                       // position 65536: u16 0, head 0's old position
        assertThat(head).isOdd();
        writeUsed(0, 0, 0, 1);                   // a device naming 0: added at position 0 long ago, not now
        assertThatThrownBy(drv::collectUsed).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.BAD_USED_ID));
    }

    /** The device takes every available buffer and returns them as one batch (whole writable lengths). */
    private void drain() throws QueueFault {
        while (dev.pop(chain)) dev.pushUsed(chain.head(), (int) chain.writableBytes());
        dev.publishUsed();
    }

    private void assertBadUsedId() {
        assertThatThrownBy(drv::pollUsed).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.BAD_USED_ID));
        assertThat(drv.isStopped()).isTrue();
        assertThatThrownBy(drv::pollUsed).isSameAs(drv.fault());
    }

    @Test
    void saveAndRestoreKeepInFlightBuffersInOrder() throws QueueFault {
        for (int i = 0; i < 4; i++) add(1);      // heads 0, 2, 4, 6
        dev.pop(chain);
        dev.pushUsed(chain.head(), 100);
        dev.pop(chain);
        dev.pop(chain);                          // 2 and 4 in flight, 6 not popped
        dev.publishUsed();
        QueueState s = dev.save();
        assertThat(s.inFlight()).containsExactly(2, 4);
        assertThat(s.nextUsed()).isEqualTo(1);
        assertThat(s.nextAvail()).isEqualTo(3);

        SplitVirtqueue back = SplitVirtqueue.restore(s, memory, true, true, Notifier.of(call));
        assertThat(back.inOrder()).isTrue();
        assertThat(back.save()).isEqualTo(s);
        List<Integer> order = new ArrayList<>();
        while (back.pop(chain)) {
            order.add(chain.head());
            back.pushUsed(chain.head(), order.size() == 2 ? 50 : 100);
        }
        assertThat(order).containsExactly(2, 4, 6);
        back.publishUsed();
        assertThat(poll()).containsExactly(0L << 32 | 100, 2L << 32 | 100, 4L << 32 | 50, 6L << 32 | 100);
        assertThat(drv.freeDescriptors()).isEqualTo(SIZE);

        // restored in order, pushing a resubmitted head out of order is the device's bug
        for (int i = 0; i < 2; i++) add(0);
        back.pop(chain);
        back.pop(chain);
        back.publishUsed();
        SplitVirtqueue again = SplitVirtqueue.restore(back.save(), memory, true, true, Notifier.of(call));
        again.pop(chain);
        int older = chain.head();
        again.pop(chain);
        int newer = chain.head();
        assertThatThrownBy(() -> again.pushUsed(newer, 0)).isInstanceOf(IllegalArgumentException.class);
        again.pushUsed(older, 0);
        again.pushUsed(newer, 0);
        again.publishUsed();
        assertThat(poll()).hasSize(2);
    }

    private List<Long> poll() throws QueueFault {
        List<Long> out = new ArrayList<>();
        long e;
        while ((e = drv.pollUsed()) >= 0) out.add(e);
        return out;
    }
}
