package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The device's batched completion ({@link IoqDevice#completeLater} + {@link IoqDevice#publishCompleted}):
 * nothing is handed back before the publish, then inuse.head moves once past the whole batch and every
 * descriptor goes back north, in order, with its own length; the driver reaps them like single completions,
 * across wrap-around; save refuses staged completions; a descriptor taken back while staged is a fault.
 */
class IoqBatchedCompletionTest {
    static final int COUNT = 8;

    TestMemory m;
    MemorySegment head;
    IoqDriver drv;
    IoqDevice dev;
    final List<long[]> reaped = new ArrayList<>();
    final IoqDriver.CompletionSink sink = (cookie, len) -> reaped.add(new long[] {cookie, len});

    @BeforeEach
    void setUp() throws QueueFault {
        m = new TestMemory();
        head = m.at(TestMemory.RING_A, ringSize(COUNT));
        drv = IoqDriver.create(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true);
        dev = IoqDevice.attach(0, m.memory, TestMemory.RING_A, COUNT, Notifier.NONE, true);
    }

    @AfterEach
    void tearDown() {
        m.close();
    }

    private int inuseHead() { return head.get(ValueLayout.JAVA_INT_UNALIGNED, idxOffset(IDX_INUSE, IDX_HEAD)); }

    private int validHead() { return head.get(ValueLayout.JAVA_INT_UNALIGNED, idxOffset(IDX_VALID, IDX_HEAD)); }

    private byte sown(int i) { return head.get(ValueLayout.JAVA_BYTE, descOffset(i) + DESC_SOWN); }

    @Test
    void aBatchIsHandedBackAtPublishWithOneHeadMove() throws QueueFault {
        for (long c = 0; c < 5; c++) assertThat(drv.offer(c, TestMemory.BUFS_A + 64 * c, 64)).isTrue();
        for (int k = 0; k < 4; k++) {
            assertThat(dev.poll().cookie()).isEqualTo(k);
            dev.completeLater(10 + k);
        }
        assertThat(dev.staged()).isEqualTo(4);
        assertThat(inuseHead()).isZero();
        for (int i = 0; i < 4; i++) assertThat(sown(i)).isEqualTo((byte) SOUTH);
        assertThat(drv.reap(sink, 100)).isZero();          // nothing back before the publish
        assertThatThrownBy(dev::save).isInstanceOf(IllegalStateException.class);

        dev.publishCompleted();
        assertThat(dev.staged()).isZero();
        assertThat(inuseHead()).isEqualTo(4);
        for (int i = 0; i < 4; i++) assertThat(sown(i)).isEqualTo((byte) NORTH);
        assertThat(sown(4)).isEqualTo((byte) SOUTH);
        assertThat(drv.reap(sink, 100)).isEqualTo(4);
        assertThat(validHead()).isEqualTo(4);              // stored once, at the end of the reap
        assertThat(reaped).extracting(e -> e[0]).containsExactly(0L, 1L, 2L, 3L);
        assertThat(reaped).extracting(e -> e[1]).containsExactly(10L, 11L, 12L, 13L);
        assertThat(dev.save().inFlight()).isEmpty();      // 4 was offered, not taken
        assertThat(dev.save().nextUsed()).isEqualTo(4);
    }

    @Test
    void batchesAcrossWrapAroundAndMixedWithSingleCompletions() throws QueueFault {
        long next = 0, expect = 0;
        for (int round = 0; round < 200; round++) {
            while (drv.hasRoom()) assertThat(drv.offer(next, TestMemory.BUFS_A + 64 * (next++ % COUNT), 64)).isTrue();
            IoqDevice.Buffer b;
            int k = 0;
            while ((b = dev.poll()) != null) {
                if ((round + k++) % 3 == 0) dev.complete(b.cookie() % 64);   // publishes earlier staged ones too
                else dev.completeLater(b.cookie() % 64);
                if (k % 5 == 0) dev.publishCompleted();
            }
            dev.publishCompleted();
            reaped.clear();
            drv.reap(sink, round % 2 == 0 ? 3 : 100);
            drv.reap(sink, 100);
            for (long[] e : reaped) {
                assertThat(e[0]).isEqualTo(expect++);
                assertThat(e[1]).isEqualTo(e[0] % 64);
            }
            assertThat(drv.outstanding()).isZero();
        }
        assertThat(expect).isEqualTo(drv.buffers).isEqualTo(dev.buffers);
        assertThat(validHead()).isEqualTo((int) (expect % COUNT));
    }

    @Test
    void aDescriptorTakenBackWhileStagedIsAFault() throws QueueFault {
        drv.offer(1, TestMemory.BUFS_A, 64);
        drv.offer(2, TestMemory.BUFS_A + 64, 64);
        dev.poll();
        dev.completeLater(1);
        dev.poll();
        head.set(ValueLayout.JAVA_BYTE, descOffset(1) + DESC_SOWN, (byte) NORTH);   // the driver grabs descriptor 1
        assertThatThrownBy(() -> dev.completeLater(1)).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.BAD_DESCRIPTOR));
        assertThatThrownBy(dev::poll).isSameAs(dev.fault());
    }

    @Test
    void stagedOffersReachTheDeviceAtPublishInOrderAndCountAgainstRoom() throws QueueFault {
        for (long c = 0; c < COUNT; c++) assertThat(drv.offerLater(c, TestMemory.BUFS_A + 64 * c, 64)).isTrue();
        assertThat(drv.hasRoom()).isFalse();
        assertThat(drv.offerLater(99, TestMemory.BUFS_A, 64)).isFalse();
        assertThat(dev.poll()).isNull();                   // staged: still north-owned, tails not moved
        assertThat(drv.reap(sink, 100)).isZero();          // and not mistaken for completions
        drv.kick();                                        // publishes, then signals
        assertThat(drv.staged()).isZero();
        assertThat(head.get(ValueLayout.JAVA_BYTE, idxOffset(IDX_VALID, IDX_FULL))).isEqualTo((byte) 1);
        for (long c = 0; c < COUNT; c++) {
            assertThat(dev.poll().cookie()).isEqualTo(c);
            dev.completeLater(c);
        }
        dev.publishCompleted();
        assertThat(drv.reap(sink, 100)).isEqualTo(COUNT);
        assertThat(reaped).extracting(e -> e[0]).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L);
        assertThat(drv.fault()).isNull();
        assertThat(dev.fault()).isNull();
    }

    @Test
    void completingMoreThanIsInFlightIsTheDevicesBug() throws QueueFault {
        drv.offer(1, TestMemory.BUFS_A, 64);
        dev.poll();
        dev.completeLater(0);
        assertThatThrownBy(() -> dev.completeLater(0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> dev.complete(0)).isInstanceOf(IllegalStateException.class);
        dev.publishCompleted();
        assertThat(drv.reap(sink, 10)).isEqualTo(1);
    }
}
