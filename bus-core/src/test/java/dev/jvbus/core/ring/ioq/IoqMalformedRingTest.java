package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * One test per rule a peer can break. Ring A is the victim of a misbehaving peer (played by
 * writing its shared memory directly); ring B lives in the same memory and must carry on.
 * Each fault has its specific reason, and the queue stays stopped: the next call faults again.
 */
class IoqMalformedRingTest {
    static final int COUNT = 8;

    TestMemory m;
    MemorySegment headA;
    IoqDriver drvA;
    IoqDevice devA;
    IoqDriver drvB;
    IoqDevice devB;

    @BeforeEach
    void setUp() throws QueueFault {
        m = new TestMemory();
        headA = m.at(TestMemory.RING_A, ringSize(COUNT));
        drvA = IoqDriver.create(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true);
        devA = IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true);
        drvB = IoqDriver.create(1, m.memory, TestMemory.RING_B, COUNT, Notifier.NONE, true);
        devB = IoqDevice.attach(1, m.memory, TestMemory.RING_B, COUNT, Notifier.NONE, true);
    }

    @AfterEach
    void healthyRingCarriesOn() throws QueueFault {
        long next = 0;
        IoqPump.Reaper reaper = new IoqPump.Reaper();
        for (int round = 0; round < 20; round++) {
            for (int k = 0; k < 5; k++, next++) assertThat(drvB.offer(next, TestMemory.BUFS_B + k * 16L, 16)).isTrue();
            for (int k = 0; k < 5; k++) {
                IoqDevice.Buffer b = devB.poll();
                assertThat(b).isNotNull();
                assertThat(b.cookie()).isEqualTo(next - 5 + k);
                devB.complete(8);
            }
            assertThat(devB.poll()).isNull();
            assertThat(drvB.reap(reaper, 100)).isEqualTo(5);
        }
        assertThat(reaper.next).isEqualTo(100);
        m.close();
    }

    static void assertStops(Reason reason, ThrowingCallable op) {
        for (int attempt = 0; attempt < 2; attempt++)    // the second call meets the stopped queue
            assertThatThrownBy(op).isInstanceOfSatisfying(QueueFault.class, f -> assertThat(f.reason()).isEqualTo(reason));
    }

    static void assertRefused(Reason reason, ThrowingCallable op) {
        assertThatThrownBy(op).isInstanceOfSatisfying(QueueFault.class, f -> assertThat(f.reason()).isEqualTo(reason));
    }

    void offerA(int n) throws QueueFault {
        for (int i = 0; i < n; i++) assertThat(drvA.offer(i, TestMemory.BUFS_A + i * 16L, 16)).isTrue();
    }

    @Test
    void ringOrSignalMagicWrong() {
        U32.set(headA, (long) MAGIC_OFFSET, 0xdeadbeef);
        assertRefused(Reason.BAD_RING_MAGIC, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true));
        U32.set(headA, (long) MAGIC_OFFSET, RING_MAGIC);
        U32.set(headA, (long) SIGNAL_OFFSET, 0);
        assertRefused(Reason.BAD_RING_MAGIC, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true));
    }

    @Test
    void ringVersionWrong() {
        U32.set(headA, (long) VERSION_OFFSET, 3);
        assertRefused(Reason.BAD_RING_VERSION, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true));
    }

    @Test
    void countMismatchOrOutOfRange() {
        assertRefused(Reason.BAD_QUEUE_SIZE, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, 16, Notifier.NONE, true));
        assertRefused(Reason.BAD_QUEUE_SIZE, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, 0, Notifier.NONE, true));
        assertRefused(Reason.BAD_QUEUE_SIZE, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A, MAX_COUNT + 1, Notifier.NONE, true));
    }

    @Test
    void ringOutsideMemoryOrMisaligned() {
        long end = TestMemory.BASE + TestMemory.SIZE;
        assertRefused(Reason.BAD_RING_ADDRESS, () -> IoqDevice.attach(0, m.memory, end - 100, COUNT, Notifier.NONE, true));
        assertRefused(Reason.BAD_RING_ADDRESS, () -> IoqDevice.attach(0, m.memory, 0x1000, COUNT, Notifier.NONE, true));
        assertRefused(Reason.BAD_RING_ADDRESS, () -> IoqDevice.attach(0, m.memory, TestMemory.RING_A + 4, COUNT, Notifier.NONE, true));
    }

    @Test
    void indexOutsideTheTable() throws QueueFault {
        offerA(1);
        U32.set(headA, idxOffset(IDX_INUSE, IDX_TAIL), 1000);
        assertStops(Reason.INDEX_OUT_OF_RANGE, devA::poll);
    }

    @Test
    void tailMovedBackOrJumpedPastTheFreeSlots() throws QueueFault {
        offerA(6);
        for (int i = 0; i < 6; i++) assertThat(devA.poll()).isNotNull();
        devA.complete(8);
        devA.complete(8);                                   // head 2, 4 in flight, tail 6
        U32.set(headA, idxOffset(IDX_INUSE, IDX_TAIL), 3);  // tail back to 3: only 1 published now
        U8.set(headA, descOffset(6) + DESC_VALID, (byte) 1);
        U8.set(headA, descOffset(6) + DESC_SOWN, (byte) SOUTH);
        assertStops(Reason.AVAIL_INDEX_JUMP, devA::poll);
    }

    @Test
    void bufferOutsideGuestMemory() throws QueueFault {
        assertThat(drvA.offer(1, TestMemory.BASE + TestMemory.SIZE - 8, 16)).isTrue();   // straddles the end
        assertStops(Reason.BUFFER_OUT_OF_RANGE, devA::poll);
    }

    @Test
    void lengthsThatOverflow() throws Exception {
        assertThat(drvA.offer(1, 0xffff_ffff_ffff_fff0L, 0x20)).isTrue();   // ptr + len wraps 2^64
        assertStops(Reason.LENGTH_OVERFLOW, devA::poll);

        // len >= 2^63, on a fresh ring
        IoqDriver drv = IoqDriver.create(2, m.memory, TestMemory.RING_A + 0x4000, COUNT, Notifier.NONE, true);
        IoqDevice dev = IoqDevice.attach(2, m.memory, TestMemory.RING_A + 0x4000, COUNT, Notifier.NONE, true);
        assertThat(drv.offer(1, TestMemory.BUFS_A, -1L)).isTrue();
        assertStops(Reason.LENGTH_OVERFLOW, dev::poll);

        // driver side: the device claims to have written more than the buffer holds
        drv = IoqDriver.create(3, m.memory, TestMemory.RING_A + 0x8000, COUNT, Notifier.NONE, true);
        dev = IoqDevice.attach(3, m.memory, TestMemory.RING_A + 0x8000, COUNT, Notifier.NONE, true);
        assertThat(drv.offer(1, TestMemory.BUFS_A, 16)).isTrue();
        assertThat(dev.poll()).isNotNull();
        dev.complete(1000);
        IoqDriver d = drv;
        assertStops(Reason.LENGTH_OVERFLOW, () -> d.reap((c, l) -> { }, 10));
    }

    @Test
    void ownershipBitsOnDescriptorsThePeerDidNotOwn() throws Exception {
        // the driver hands over a descriptor without pushing the index
        U64.set(headA, descOffset(0) + DESC_PTR, TestMemory.BUFS_A);
        U64.set(headA, descOffset(0) + DESC_LEN, 16L);
        U8.set(headA, descOffset(0) + DESC_VALID, (byte) 1);
        U8.set(headA, descOffset(0) + DESC_SOWN, (byte) SOUTH);
        assertStops(Reason.BAD_DESCRIPTOR, devA::poll);

        // the driver takes back a descriptor the device holds
        long ring2 = TestMemory.RING_A + 0x4000;
        IoqDriver drv = IoqDriver.create(2, m.memory, ring2, COUNT, Notifier.NONE, true);
        IoqDevice dev = IoqDevice.attach(2, m.memory, ring2, COUNT, Notifier.NONE, true);
        assertThat(drv.offer(1, TestMemory.BUFS_A, 16)).isTrue();
        assertThat(dev.poll()).isNotNull();
        U8.set(m.at(ring2, ringSize(COUNT)), descOffset(0) + DESC_SOWN, (byte) NORTH);
        assertStops(Reason.BAD_DESCRIPTOR, () -> dev.complete(8));

        // driver side: the device hands a descriptor back without advancing inuse.head
        long ring3 = TestMemory.RING_A + 0x8000;
        IoqDriver drv3 = IoqDriver.create(3, m.memory, ring3, COUNT, Notifier.NONE, true);
        assertThat(drv3.offer(1, TestMemory.BUFS_A, 16)).isTrue();
        U8.set(m.at(ring3, ringSize(COUNT)), descOffset(0) + DESC_SOWN, (byte) NORTH);
        assertStops(Reason.BAD_DESCRIPTOR, () -> drv3.reap((c, l) -> { }, 10));
    }

    @Test
    void peerWroteAnIndexOnlyTheDeviceWrites() throws QueueFault {
        offerA(1);
        U32.set(headA, idxOffset(IDX_INUSE, IDX_HEAD), 5);
        assertStops(Reason.INDEX_TAMPERED, devA::poll);
    }

    @Test
    void deviceClaimsMoreCompletionsThanOutstanding() throws QueueFault {
        offerA(2);
        U32.set(headA, idxOffset(IDX_INUSE, IDX_HEAD), 6);   // a device that "completed" 6 of 2
        U8.set(headA, descOffset(0) + DESC_SOWN, (byte) NORTH);
        assertStops(Reason.USED_INDEX_JUMP, () -> drvA.reap((c, l) -> { }, 10));
    }

    @Test
    void savedStateThatDoesNotMatchTheRing() throws QueueFault {
        offerA(3);
        assertThat(devA.poll()).isNotNull();
        devA.complete(8);
        assertThat(devA.poll()).isNotNull();                 // one in flight
        QueueState s = devA.save();
        assertThat(IoqDevice.restore(s, m.memory, Notifier.NONE).save()).isNotNull();
        List<QueueState> bad = List.of(
                new QueueState(0, RingKind.SPLIT, COUNT, true, s.descAddr(), s.availAddr(), s.usedAddr(), s.nextAvail(), s.nextUsed(), true, s.inFlight()),
                new QueueState(0, RingKind.IOQ, COUNT, true, s.descAddr() + 32, s.availAddr(), s.usedAddr(), s.nextAvail(), s.nextUsed(), true, s.inFlight()),
                new QueueState(0, RingKind.IOQ, COUNT, true, s.descAddr(), s.availAddr(), s.usedAddr(), s.nextAvail(), s.nextUsed() + 1, true, s.inFlight()),
                new QueueState(0, RingKind.IOQ, COUNT, true, s.descAddr(), s.availAddr(), s.usedAddr(), s.nextAvail(), s.nextUsed(), true, List.of(5)),
                new QueueState(0, RingKind.IOQ, COUNT, true, s.descAddr(), s.availAddr(), s.usedAddr(), 0, s.nextUsed(), true, List.of()),
                new QueueState(0, RingKind.IOQ, COUNT, true, s.descAddr(), s.availAddr(), s.usedAddr(), s.nextAvail() + 3, s.nextUsed(), true,
                        List.of(1, 2, 3, 4)));   // claims more in flight than the driver published
        for (QueueState b : bad)
            assertRefused(Reason.STATE_MISMATCH, () -> IoqDevice.restore(b, m.memory, Notifier.NONE));
    }
}
