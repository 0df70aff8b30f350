package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * vhost-user inflight tracking on the ring: a device records the heads it takes and returns in a
 * memfd that outlives it; a device started again over the same guest memory and record hands the
 * heads the dead one held out again, oldest first, and nothing it had returned. Real memfds for the
 * guest memory and the record; a driver puts real buffers on the ring; a "crash" is dropping the
 * device object at a chosen point, the memory left exactly as it was.
 */
class SplitInflightLogTest {
    static final int SIZE = 8;
    static final long DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000, BUFS = 0x8000, MEM = 1 << 16;
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Memfd mem = Memfd.create("inflight-guest", MEM);
    private final Memfd record = Memfd.create("inflight-record", SplitInflightLog.bytesFor(SIZE));
    private final GuestMemory gm = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
    private final SplitVirtqueueDriver drv;
    private final DescriptorChain chain = new DescriptorChain(SIZE);

    SplitInflightLogTest() throws QueueFault {
        drv = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, gm, false, false, false, Notifier.NONE);
    }

    @AfterEach
    void close() {
        mem.close();
        record.close();
    }

    /** A device on a fresh ring that records into the (never used) record. */
    private SplitVirtqueue freshDevice() throws QueueFault {
        SplitVirtqueue dev = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, gm, false, false, Notifier.NONE);
        SplitRingResume.Resumed r = SplitRingResume.fromInflight(0, SIZE, DESC, AVAIL, USED, gm, 0, false, record.segment());
        assertThat(r.fromInflight()).as("a record never used says nothing").isFalse();
        dev.trackInflight(r.log());
        return dev;
    }

    /** A device process started again: where the record says the ring is, from {@code base} as a front-end sent it. */
    private SplitVirtqueue restartedDevice(int base) throws QueueFault {
        SplitRingResume.Resumed r = SplitRingResume.fromInflight(0, SIZE, DESC, AVAIL, USED, gm, base, false, record.segment());
        SplitVirtqueue dev = SplitVirtqueue.restore(r.state(), gm, false, Notifier.NONE);
        dev.trackInflight(r.log());
        return dev;
    }

    /** Offers a buffer carrying {@code seq}; returns its head. */
    private int offer(int seq) throws QueueFault {
        long addr = BUFS + 64L * seq;
        mem.segment().set(ValueLayout.JAVA_INT_UNALIGNED, addr, seq);
        int head = drv.add(addr, 64, false);
        assertThat(head).isNotNegative();
        return head;
    }

    private int popSeq(SplitVirtqueue dev) throws QueueFault {
        assertThat(dev.pop(chain)).isTrue();
        return chain.segment(0).get(ValueLayout.JAVA_INT_UNALIGNED, chain.offset(0));
    }

    @Test
    void aRestartedDeviceHandsOutTheHeadsTheDeadOneHeldInTakingOrderWhereTheBaseWouldRepeatOneAndLoseAnother() throws QueueFault {
        SplitVirtqueue dev = freshDevice();
        int[] heads = new int[4];
        for (int i = 0; i < 4; i++) heads[i] = offer(i);
        for (int i = 0; i < 4; i++) assertThat(popSeq(dev)).isEqualTo(i);
        dev.pushUsed(heads[2], 0);   // returned out of order: 2, then 0
        dev.pushUsed(heads[0], 0);
        dev.publishUsed();           // used idx 2; 1 and 3 still held. The device dies here.

        // The base a front-end sends after a back-end crash is the used index (QEMU): the avail ring from there
        // holds buffer 2 (already returned) and 3, and not 1. The record knows better.
        SplitVirtqueue byBase = SplitVirtqueue.restore(SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, USED, gm, 2, false), gm, false,
                Notifier.NONE);   // reads the ring, writes nothing to it
        assertThat(popSeq(byBase)).as("from the base: buffer 2 again").isEqualTo(2);
        assertThat(popSeq(byBase)).isEqualTo(3);
        assertThat(byBase.pop(chain)).as("and buffer 1 never").isFalse();

        SplitVirtqueue again = restartedDevice(2);
        offer(4);
        drv.kickIfNeeded();
        assertThat(popSeq(again)).as("oldest held first").isEqualTo(1);
        assertThat(popSeq(again)).isEqualTo(3);
        assertThat(popSeq(again)).as("then the new buffer").isEqualTo(4);
        assertThat(again.pop(chain)).isFalse();
    }

    @Test
    void aRecordThatKnowsWhereTheRingIsNeedsNoBaseAtAll() throws QueueFault {
        SplitVirtqueue dev = freshDevice();
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) heads[i] = offer(i);
        for (int i = 0; i < 3; i++) popSeq(dev);
        dev.pushUsed(heads[0], 0);
        dev.publishUsed();
        // DPDK's virtio-user sends base 0 whatever happened; from the base the ring could not even start.
        assertThatThrownBy(() -> SplitRingResume.fromBase(0, SIZE, DESC, AVAIL, USED, gm, 0, false))
                .isInstanceOf(QueueFault.class);
        SplitVirtqueue again = restartedDevice(0);
        assertThat(popSeq(again)).isEqualTo(1);
        assertThat(popSeq(again)).isEqualTo(2);
        assertThat(again.pop(chain)).isFalse();
    }

    @Test
    void aCrashBetweenPublishingTheUsedIndexAndClearingTheBatchRepeatsNothing() throws QueueFault {
        SplitVirtqueue dev = freshDevice();
        int[] heads = new int[3];
        for (int i = 0; i < 3; i++) heads[i] = offer(i);
        for (int i = 0; i < 3; i++) popSeq(dev);
        for (int h : heads) dev.pushUsed(h, 0);
        byte[] beforePublish = record.segment().toArray(ValueLayout.JAVA_BYTE);
        dev.publishUsed();
        // The process died right after the used index store: the record is as it was before the publish.
        MemorySegment.copy(MemorySegment.ofArray(beforePublish), 0, record.segment(), 0, beforePublish.length);
        assertThat(Short.toUnsignedInt(record.segment().get(U16, SplitInflightLog.USED_IDX))).isZero();

        SplitVirtqueue again = restartedDevice(3);
        assertThat(again.pop(chain)).as("the batch the driver has was cleared, not handed out again").isFalse();
        offer(3);
        assertThat(popSeq(again)).isEqualTo(3);
        assertThat(Short.toUnsignedInt(record.segment().get(U16, SplitInflightLog.USED_IDX))).isEqualTo(3);
    }

    @Test
    void everyValueOfAHostileRecordIsCheckedBeforeTheRingRuns() throws QueueFault {
        SplitVirtqueue dev = freshDevice();
        offer(0);
        popSeq(dev);   // one head held: a record in use
        MemorySegment r = record.segment();
        byte[] good = r.toArray(ValueLayout.JAVA_BYTE);

        r.set(U16, SplitInflightLog.VERSION_OFF, (short) 7);
        assertRefused("inflight region version 7");
        restore(good);
        r.set(U16, SplitInflightLog.DESC_NUM, (short) 16);
        assertRefused("inflight region for 16 descriptors, ring has 8");
        restore(good);
        r.set(ValueLayout.JAVA_BYTE, SplitInflightLog.DESC + 16 * 5, (byte) 2);
        assertRefused("inflight flag of head 5 is 2");
        restore(good);
        r.set(U16, SplitInflightLog.LAST_BATCH_HEAD, (short) 9);
        assertRefused("inflight last_batch_head 9 >= ring size 8");
        restore(good);
        r.set(U16, SplitInflightLog.USED_IDX, (short) 100);   // "behind" the ring's 0 by 65436
        assertRefused("inflight used_idx 100 is 65436 behind the ring's 0");
        restore(good);
        for (int h = 1; h < 4; h++) r.set(ValueLayout.JAVA_BYTE, SplitInflightLog.DESC + 16L * h, (byte) 1);   // 4 held, 1 offered
        assertThatThrownBy(() -> restartedDevice(0)).isInstanceOf(QueueFault.class)
                .hasMessageContaining("avail idx in ring is 1, state says next 4");
        restore(good);
        SplitVirtqueue again = restartedDevice(0);
        assertThat(popSeq(again)).as("the record as the device left it still works").isZero();
    }

    private void restore(byte[] good) {
        MemorySegment.copy(MemorySegment.ofArray(good), 0, record.segment(), 0, good.length);
    }

    private void assertRefused(String why) {
        assertThatThrownBy(() -> restartedDevice(0)).isInstanceOf(QueueFault.class).hasMessageContaining(why)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(QueueFault.Reason.STATE_MISMATCH));
    }
}
