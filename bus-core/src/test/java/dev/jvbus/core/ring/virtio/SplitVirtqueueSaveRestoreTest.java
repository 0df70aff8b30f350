package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SequenceStream.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Live save/restore over the same shared memory: a running stream is paused (the device worker
 * quiesces, possibly holding a popped, unconsumed chain), the device queue is saved, thrown away and
 * restored from its {@link QueueState}; the driver never stops. Every number arrives exactly once.
 */
class SplitVirtqueueSaveRestoreTest {
    static final long TOTAL = 1_000_000;
    static final int PAUSES = 8;

    @ParameterizedTest(name = "eventIdx={0}, inOrder={1}")
    @CsvSource({"true,false", "false,false", "true,true"})
    void pausedSavedAndRestoredQueueContinuesTheStream(boolean eventIdx, boolean inOrder) throws Exception {
        try (Memfd mem = Memfd.create("split-restore", MEMORY_BYTES); EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            GuestMemory memory = SequenceStream.memory(mem.segment());
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, inOrder, Notifier.of(kick));
            Device device = new Device(SplitVirtqueue.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, inOrder, Notifier.of(call)), kick);
            Driver driver = new Driver(drv, eventIdx, call, memory);
            FutureTask<Long> p = start("split-driver", () -> driver.run(TOTAL));

            int restores = 0, savesWithInFlight = 0;
            for (long pauseAt = TOTAL / (PAUSES + 1); ; pauseAt += TOTAL / (PAUSES + 1)) {
                device.pause = false;
                device.pauseAt = pauseAt;                        // the worker stops there itself, even if this thread is descheduled
                FutureTask<Boolean> d = start("split-device", () -> device.run(TOTAL));
                while (!d.isDone() && device.progress < pauseAt) Thread.sleep(1);
                device.pause = true;
                kick.signal();                                   // wake the worker if it is parked
                if (d.get(30, TimeUnit.SECONDS)) break;          // finished before the pause landed

                QueueState state = device.queue.save();          // quiesced: the worker has returned
                if (!state.inFlight().isEmpty()) savesWithInFlight++;
                device.queue = null;                             // the old device object is gone
                Thread.sleep(2);                                 // the driver runs on and may park
                SplitVirtqueue restored = SplitVirtqueue.restore(state, memory, false, inOrder, Notifier.of(call));
                assertThat(restored.save()).isEqualTo(state);
                device.use(restored);
                restores++;
            }
            assertThat(p.get(60, TimeUnit.SECONDS)).isEqualTo(TOTAL);
            assertThat(device.expected).isEqualTo(TOTAL);
            assertThat(drv.isStopped()).isFalse();
            System.out.printf("split save/restore eventIdx=%s inOrder=%s: %d buffers, %d restores, %d with chains in flight%n",
                    eventIdx, inOrder, TOTAL, restores, savesWithInFlight);
            assertThat(restores).as("the worker pauses itself at each mark").isGreaterThanOrEqualTo(PAUSES);
            assertThat(savesWithInFlight).isPositive();
        }
    }

    @Test
    void restoreChecksTheStateAgainstTheRingInMemory() throws Exception {
        try (Memfd mem = Memfd.create("split-restore-check", MEMORY_BYTES); EventFd call = EventFd.create()) {
            GuestMemory memory = SequenceStream.memory(mem.segment());
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(3, 8, DESC, AVAIL, USED, memory, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(3, 8, DESC, AVAIL, USED, memory, true, false, Notifier.of(call));
            BufferList list = new BufferList(1);
            for (int i = 0; i < 5; i++) drv.add(list.clear().readable(BUFFERS + 8L * i, 8));
            DescriptorChain c = dev.newChain();
            int[] heads = new int[3];
            for (int i = 0; i < 3; i++) {
                assertThat(dev.pop(c)).isTrue();
                heads[i] = c.head();
            }
            dev.pushUsed(heads[1], 0);                        // out of order: heads 0 and 2 stay in flight
            dev.publishUsed();
            QueueState s = dev.save();
            assertThat(s.inFlight()).containsExactly(heads[0], heads[2]);
            assertThat(s.nextAvail()).isEqualTo(3);
            assertThat(s.nextUsed()).isEqualTo(1);

            assertRestoreFails(with(s, s.nextAvail(), 2, s.inFlight()), memory, Reason.STATE_MISMATCH);      // used idx differs from ring
            assertRestoreFails(with(s, 20, s.nextUsed(), s.inFlight()), memory, Reason.STATE_MISMATCH);      // avail far from ring
            assertRestoreFails(with(s, s.nextAvail(), s.nextUsed(), List.of(heads[0])), memory, Reason.STATE_MISMATCH);
            assertRestoreFails(with(s, s.nextAvail(), s.nextUsed(), List.of(heads[0], heads[0])), memory, Reason.STATE_MISMATCH);
            assertRestoreFails(with(s, s.nextAvail(), s.nextUsed(), List.of(heads[0], 8)), memory, Reason.STATE_MISMATCH);
            assertRestoreFails(with(s, 0x1_0003, s.nextUsed(), s.inFlight()), memory, Reason.STATE_MISMATCH);
            assertRestoreFails(new QueueState(3, RingKind.SPLIT, 6, true, DESC, AVAIL, USED, 3, 1, true, s.inFlight()),
                    memory, Reason.BAD_QUEUE_SIZE);
            assertRestoreFails(new QueueState(3, RingKind.SPLIT, 8, true, DESC + 4, AVAIL, USED, 3, 1, true, s.inFlight()),
                    memory, Reason.BAD_RING_ADDRESS);
            assertRestoreFails(new QueueState(3, RingKind.SPLIT, 8, false, DESC, AVAIL, USED, 3, 1, true, s.inFlight()),
                    memory, Reason.QUEUE_NOT_READY);
            assertThatThrownBy(() -> SplitVirtqueue.restore(new QueueState(3, RingKind.IOQ, 8, true, DESC, AVAIL, USED, 3, 1, true,
                    s.inFlight()), memory, false, Notifier.NONE)).isInstanceOf(IllegalArgumentException.class);

            // The good state restores: the driver has buffers outstanding, so it is signalled once;
            // in-flight chains come back first, oldest first, then the rest of the ring.
            call.drain();
            SplitVirtqueue back = SplitVirtqueue.restore(s, memory, false, Notifier.of(call));
            assertThat(call.drain()).isEqualTo(1);
            List<Integer> order = new ArrayList<>();
            while (back.pop(c)) order.add(c.head());
            assertThat(order).hasSize(4).startsWith(heads[0], heads[2]);
            for (int h : order) back.pushUsed(h, 0);
            back.publishUsed();
            int collected = 0;
            while (drv.pollUsed() >= 0) collected++;
            assertThat(collected).isEqualTo(5);
        }
    }

    private static QueueState with(QueueState s, int nextAvail, int nextUsed, List<Integer> inFlight) {
        return new QueueState(s.index(), s.kind(), s.size(), s.ready(), s.descAddr(), s.availAddr(), s.usedAddr(),
                nextAvail, nextUsed, s.eventIdx(), inFlight);
    }

    private static void assertRestoreFails(QueueState s, GuestMemory memory, Reason reason) {
        assertThatThrownBy(() -> SplitVirtqueue.restore(s, memory, false, Notifier.NONE)).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).as(e.getMessage()).isEqualTo(reason));
    }
}
