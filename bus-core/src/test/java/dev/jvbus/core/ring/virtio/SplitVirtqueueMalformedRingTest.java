package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each rule a driver can break gives its own {@link Reason}; the broken queue stops (later calls rethrow
 * the fault), and a healthy queue in the same memory, with a real eventfd, keeps working. Bad rings are
 * written by hand into a real memfd.
 */
class SplitVirtqueueMalformedRingTest {
    static final long G = 0x10_0000L;          // guest address of the one region
    static final long MEM = 0x1_0000L;
    static final int SIZE = 8;
    static final long BAD_DESC = G, BAD_AVAIL = G + 0x100, BAD_USED = G + 0x200;
    static final long OK_DESC = G + 0x1000, OK_AVAIL = G + 0x1100, OK_USED = G + 0x1200;
    static final long BUF = G + 0x4000;
    static final long TABLE = G + 0x8000;

    Memfd memfd;
    MemorySegment seg;
    GuestMemory memory;
    EventFd healthyCall;
    SplitVirtqueueDriver healthyDriver;
    SplitVirtqueue healthyDevice;
    int badAvailIdx;

    @BeforeEach
    void setUp() throws QueueFault {
        memfd = Memfd.create("malformed", MEM);
        seg = memfd.segment();
        memory = GuestMemory.of(new MemoryRegion(G, MEM, seg));
        healthyCall = EventFd.create();
        healthyDriver = SplitVirtqueueDriver.create(1, SIZE, OK_DESC, OK_AVAIL, OK_USED, memory, true, true, false, Notifier.NONE);
        healthyDevice = SplitVirtqueue.create(1, SIZE, OK_DESC, OK_AVAIL, OK_USED, memory, true, true, Notifier.of(healthyCall));
    }

    @AfterEach
    void tearDown() {
        healthyCall.close();
        memfd.close();
    }

    // ---------------------------------------------------------------- one test per rule

    @Test
    void headIndexOutOfRange() throws Exception {
        offer(SIZE);
        assertStops(badQueue(false), Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @Test
    void nextIndexOutOfRange() throws Exception {
        desc(BAD_DESC, 0, BUF, 8, DESC_F_NEXT, SIZE + 1);
        offer(0);
        assertStops(badQueue(false), Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @Test
    void nextIndexOutOfRangeInsideIndirectTable() throws Exception {
        desc(BAD_DESC, 0, TABLE, 32, DESC_F_INDIRECT, 0);
        desc(TABLE, 0, BUF, 8, DESC_F_NEXT, 2);          // table has 2 entries
        offer(0);
        assertStops(badQueue(true), Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @Test
    void chainThatLoops() throws Exception {
        desc(BAD_DESC, 0, BUF, 8, DESC_F_NEXT, 1);
        desc(BAD_DESC, 1, BUF, 8, DESC_F_NEXT, 0);
        offer(0);
        assertStops(badQueue(false), Reason.CHAIN_LOOP);
    }

    @Test
    void chainThatLoopsOnItselfInsideIndirectTable() throws Exception {
        desc(BAD_DESC, 0, TABLE, 48, DESC_F_INDIRECT, 0);
        desc(TABLE, 0, BUF, 8, DESC_F_NEXT, 1);
        desc(TABLE, 1, BUF, 8, DESC_F_NEXT, 1);
        offer(0);
        assertStops(badQueue(true), Reason.CHAIN_LOOP);
    }

    @Test
    void indirectTableLongerThanTheQueue() throws Exception {
        desc(BAD_DESC, 0, TABLE, (SIZE + 1) * DESC_SIZE, DESC_F_INDIRECT, 0);
        offer(0);
        assertStops(badQueue(true), Reason.CHAIN_TOO_LONG);
    }

    @Test
    void directDescriptorsPlusIndirectTableLongerThanTheQueue() throws Exception {
        desc(BAD_DESC, 0, BUF, 8, DESC_F_NEXT, 1);
        desc(BAD_DESC, 1, TABLE, SIZE * DESC_SIZE, DESC_F_INDIRECT, 0);   // 1 + 8 > 8
        offer(0);
        assertStops(badQueue(true), Reason.CHAIN_TOO_LONG);
    }

    @Test
    void indirectInsideIndirect() throws Exception {
        desc(BAD_DESC, 0, TABLE, 32, DESC_F_INDIRECT, 0);
        desc(TABLE, 0, BUF, 8, DESC_F_NEXT, 1);
        desc(TABLE, 1, TABLE + 0x100, 16, DESC_F_INDIRECT, 0);
        offer(0);
        assertStops(badQueue(true), Reason.NESTED_INDIRECT);
    }

    @Test
    void indirectTableOfLengthZero() throws Exception {
        desc(BAD_DESC, 0, TABLE, 0, DESC_F_INDIRECT, 0);
        offer(0);
        assertStops(badQueue(true), Reason.INDIRECT_BAD_LENGTH);
    }

    @Test
    void indirectTableLengthNotAMultipleOf16() throws Exception {
        desc(BAD_DESC, 0, TABLE, 20, DESC_F_INDIRECT, 0);
        offer(0);
        assertStops(badQueue(true), Reason.INDIRECT_BAD_LENGTH);
    }

    @Test
    void indirectWithoutTheFeature() throws Exception {
        desc(BAD_DESC, 0, TABLE, 16, DESC_F_INDIRECT, 0);
        desc(TABLE, 0, BUF, 8, 0, 0);
        offer(0);
        assertStops(badQueue(false), Reason.INDIRECT_NOT_NEGOTIATED);
    }

    @Test
    void bufferOutsideGuestMemory() throws Exception {
        desc(BAD_DESC, 0, G + MEM - 4, 8, 0, 0);           // straddles the end of the region
        offer(0);
        assertStops(badQueue(false), Reason.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void bufferAddressThatWrapsTheAddressSpace() throws Exception {
        desc(BAD_DESC, 0, -8L, 0xffff_ffff, 0, 0);
        offer(0);
        assertStops(badQueue(false), Reason.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void indirectTableOutsideGuestMemory() throws Exception {
        desc(BAD_DESC, 0, 0x1000, 32, DESC_F_INDIRECT, 0);
        offer(0);
        assertStops(badQueue(true), Reason.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void totalLengthOverflowsU32() throws Exception {
        // Two 3 GiB descriptors naming the same (sparse) memory: each is inside memory, the sum is not a u32.
        long big = 3L << 30;
        try (Memfd huge = Memfd.create("malformed-huge", big + MEM)) {
            long hugeBase = 0x10_0000_0000L;
            GuestMemory both = GuestMemory.of(new MemoryRegion(G, MEM, seg), new MemoryRegion(hugeBase, big + MEM, huge.segment()));
            desc(BAD_DESC, 0, hugeBase, (int) big, DESC_F_NEXT, 1);
            desc(BAD_DESC, 1, hugeBase, (int) big, 0, 0);
            offer(0);
            SplitVirtqueue bad = SplitVirtqueue.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, both, false, false, Notifier.NONE);
            assertStops(bad, Reason.LENGTH_OVERFLOW);
        }
    }

    @Test
    void readableAfterWritable() throws Exception {
        desc(BAD_DESC, 0, BUF, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
        desc(BAD_DESC, 1, BUF + 8, 8, 0, 0);
        offer(0);
        assertStops(badQueue(false), Reason.READABLE_AFTER_WRITABLE);
    }

    @Test
    void availIndexJumpsByMoreThanTheQueueSize() throws Exception {
        SplitVirtqueue bad = badQueue(false);
        u16(BAD_AVAIL + AVAIL_IDX, SIZE + 1);
        assertStops(bad, Reason.AVAIL_INDEX_JUMP);
    }

    @Test
    void indirectTogetherWithNext() throws Exception {
        desc(BAD_DESC, 0, TABLE, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1);
        desc(TABLE, 0, BUF, 8, 0, 0);
        offer(0);
        assertStops(badQueue(true), Reason.BAD_DESCRIPTOR);
    }

    @Test
    void headOfferedAgainWhileInFlight() throws Exception {
        desc(BAD_DESC, 0, BUF, 8, 0, 0);
        offer(0);
        offer(0);
        SplitVirtqueue bad = badQueue(false);
        assertThat(bad.pop(bad.newChain())).isTrue();
        assertStops(bad, Reason.BAD_DESCRIPTOR);
    }

    @Test
    void ringAreasOutsideMemoryOrMisalignedAtSetup() {
        assertSetupFails(() -> SplitVirtqueue.create(0, SIZE, G + MEM - 64, BAD_AVAIL, BAD_USED, memory, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        assertSetupFails(() -> SplitVirtqueue.create(0, SIZE, BAD_DESC, 0x10, BAD_USED, memory, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        assertSetupFails(() -> SplitVirtqueue.create(0, SIZE, BAD_DESC + 8, BAD_AVAIL, BAD_USED, memory, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        assertSetupFails(() -> SplitVirtqueue.create(0, SIZE, BAD_DESC, BAD_AVAIL + 1, BAD_USED, memory, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        assertSetupFails(() -> SplitVirtqueue.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED + 2, memory, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        assertSetupFails(() -> SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, -16, memory, false, false, false, Notifier.NONE),
                Reason.BAD_RING_ADDRESS);
        healthyRoundTrips();
    }

    @Test
    void queueSizeNotAPowerOfTwoInRange() {
        for (int size : new int[] {0, 6, 65536, -8})
            assertSetupFails(() -> SplitVirtqueue.create(0, size, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false, Notifier.NONE),
                    Reason.BAD_QUEUE_SIZE);
        healthyRoundTrips();
    }

    // ---------------------------------------------------------------- driver side: the device is not trusted either

    @Test
    void driverRefusesUsedIndexJump() throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false, false, Notifier.NONE);
        u16(BAD_USED + USED_IDX, SIZE + 1);
        assertDriverStops(drv, Reason.USED_INDEX_JUMP);
    }

    @Test
    void driverRefusesUsedIdNotInFlight() throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false, false, Notifier.NONE);
        int head = drv.add(new BufferList(1).readable(BUF, 8));
        seg.set(SplitRing.U32, BAD_USED - G + usedElemOffset(0), head + 1);   // an id the driver never offered
        u16(BAD_USED + USED_IDX, 1);
        assertDriverStops(drv, Reason.BAD_USED_ID);
    }

    @Test
    void driverRefusesAUsedLengthBeyondWhatTheBufferLetTheDeviceWrite() throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false, false, Notifier.NONE);
        int full = drv.add(new BufferList(2).readable(BUF, 8).writable(BUF + 8, 16));
        int over = drv.add(new BufferList(2).readable(BUF, 8).writable(BUF + 8, 16));
        usedElem(0, full, 16);      // exactly the writable bytes: fine
        usedElem(1, over, 17);      // one more than the device was given
        u16(BAD_USED + USED_IDX, 2);
        long e = drv.pollUsed();
        assertThat(SplitVirtqueueDriver.usedId(e)).isEqualTo(full);
        assertThat(SplitVirtqueueDriver.usedLength(e)).isEqualTo(16);
        assertDriverStops(drv, Reason.LENGTH_OVERFLOW);
        assertThat(drv.fault().getMessage()).contains("says 17 bytes written, the buffer lets the device write 16");
    }

    @Test
    void driverRefusesAnyUsedLengthForAReadOnlyBuffer() throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false, false, Notifier.NONE);
        int head = drv.add(BUF, 64, false);
        usedElem(0, head, 0xFFFF_FFFF);   // u32 max: no sign games either
        u16(BAD_USED + USED_IDX, 1);
        assertDriverStops(drv, Reason.LENGTH_OVERFLOW);
    }

    @Test
    void inOrderDriverRefusesABatchElementLongerThanItsBuffer() throws Exception {
        SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, false,
                true, Notifier.NONE);
        drv.add(BUF, 32, true);
        int newest = drv.add(BUF + 32, 32, true);
        usedElem(0, newest, 33);          // one element for the batch of two, its length past the newest buffer
        u16(BAD_USED + USED_IDX, 2);
        assertDriverStops(drv, Reason.LENGTH_OVERFLOW);
    }

    // ---------------------------------------------------------------- helpers

    private void usedElem(int slot, int id, int len) {
        seg.set(SplitRing.U32, BAD_USED - G + usedElemOffset(slot), id);
        seg.set(SplitRing.U32, BAD_USED - G + usedElemOffset(slot) + USED_ELEM_LEN, len);
    }

    private SplitVirtqueue badQueue(boolean indirect) throws QueueFault {
        return SplitVirtqueue.create(0, SIZE, BAD_DESC, BAD_AVAIL, BAD_USED, memory, false, indirect, Notifier.NONE);
    }

    private void desc(long table, int i, long addr, int len, int flags, int next) {
        long off = table - G + descOffset(i);
        seg.set(SplitRing.U64_UNALIGNED, off + DESC_ADDR, addr);
        seg.set(SplitRing.U32, off + DESC_LEN, len);
        seg.set(SplitRing.U16, off + DESC_FLAGS, (short) flags);
        seg.set(SplitRing.U16, off + DESC_NEXT, (short) next);
    }

    /** Puts {@code head} on the bad queue's available ring and publishes the index. */
    private void offer(int head) {
        seg.set(SplitRing.U16, BAD_AVAIL - G + availEntryOffset(badAvailIdx % SIZE), (short) head);
        badAvailIdx++;
        u16(BAD_AVAIL + AVAIL_IDX, badAvailIdx);
    }

    private void u16(long addr, int value) {
        seg.set(SplitRing.U16, addr - G, (short) value);
    }

    private void assertStops(SplitVirtqueue bad, Reason reason) throws Exception {
        DescriptorChain chain = bad.newChain();
        assertFault(() -> bad.pop(chain), reason);
        assertThat(bad.isStopped()).isTrue();
        assertThat(bad.fault().reason()).isEqualTo(reason);
        assertFault(() -> bad.pop(chain), reason);       // stopped: refuses from now on
        assertThat(bad.enableKicks()).isFalse();
        assertThat(bad.publishUsed()).isFalse();
        healthyRoundTrips();
    }

    private void assertDriverStops(SplitVirtqueueDriver drv, Reason reason) throws Exception {
        assertFault(drv::pollUsed, reason);
        assertThat(drv.isStopped()).isTrue();
        assertFault(() -> drv.add(new BufferList(1).readable(BUF, 8)), reason);
        healthyRoundTrips();
    }

    private static void assertSetupFails(ThrowingCallable setup, Reason reason) {
        assertFault(setup, reason);
    }

    private static void assertFault(ThrowingCallable call, Reason reason) {
        assertThatThrownBy(call).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).as(e.getMessage()).isEqualTo(reason));
    }

    /** The other queue in the same memory still moves buffers both ways, with indirect tables too. */
    private void healthyRoundTrips() {
        try {
            DescriptorChain chain = healthyDevice.newChain();
            BufferList list = new BufferList(2);
            healthyCall.drain();
            for (int i = 0; i < 3 * SIZE; i++) {
                long in = BUF + 0x1000, out = BUF + 0x1008;
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED, in - G, 1000L + i);
                list.clear().readable(in, 8).writable(out, 8);
                int head = (i % 2 == 0) ? healthyDriver.add(list) : healthyDriver.addIndirect(list, TABLE + 0x1000);
                assertThat(head).isNotNegative();
                healthyDriver.kickIfNeeded();
                assertThat(healthyDevice.pop(chain)).isTrue();
                assertThat(chain.head()).isEqualTo(head);
                assertThat(chain.segment(0).get(ValueLayout.JAVA_LONG_UNALIGNED, chain.offset(0))).isEqualTo(1000L + i);
                chain.segment(1).set(ValueLayout.JAVA_LONG_UNALIGNED, chain.offset(1), -i);
                healthyDevice.pushUsed(chain.head(), 8);
                healthyDevice.publishUsed();
                long e = healthyDriver.pollUsed();
                assertThat(SplitVirtqueueDriver.usedId(e)).isEqualTo(head);
                assertThat(SplitVirtqueueDriver.usedLength(e)).isEqualTo(8);
                assertThat(seg.get(ValueLayout.JAVA_LONG_UNALIGNED, out - G)).isEqualTo(-i);
            }
            assertThat(healthyCall.drain()).isPositive();   // the real eventfd was rung
            assertThat(healthyDevice.isStopped()).isFalse();
        } catch (QueueFault f) {
            throw new AssertionError("healthy queue failed", f);
        }
    }
}
