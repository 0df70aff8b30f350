package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.EchoModel;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One queue stopped and started while the device stays live (virtio 1.2 VIRTIO_F_RING_RESET,
 * vhost-user's per-ring stop and start): through the model when it can, else the whole-device
 * fallback, which must still hand every other queue back its position. Real eventfds as doorbells.
 */
class QueueResetTest {
    static final QueueConfig RX = new QueueConfig(0, 256, 0x1000, 0x2000, 0x3000);
    static final QueueConfig TX = new QueueConfig(1, 64, 0x4000, 0x5000, 0x6000);

    private final Device device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
    private final EchoModel.Function fn = EchoModel.CREATED.getLast();
    private final Attachment a = device.attach("drv", DeviceObserver.NONE);
    private final EventFd kick0 = EventFd.create(), kick1 = EventFd.create(), call1 = EventFd.create(), call1b = EventFd.create();

    @AfterEach
    void close() {
        for (EventFd e : List.of(kick0, kick1, call1, call1b)) e.close();
    }

    private void live() {
        a.setMemory(GuestMemory.empty());
        a.setQueue(RX);
        a.setQueue(TX);
        a.setDoorbells(0, kick0, Notifier.NONE);
        a.setDoorbells(1, kick1, Notifier.of(call1));
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    }

    static QueueState at(QueueConfig q, int nextAvail) {
        return new QueueState(q.index(), RingKind.SPLIT, q.size(), true, q.descAddr(), q.availAddr(), q.usedAddr(),
                nextAvail, nextAvail, false, List.of());
    }

    @Test
    void aModelThatResetsQueuesStopsAndStartsOneWhileTheOtherRuns() {
        fn.resetsQueues = true;
        live();
        fn.queues = List.of(at(TX, 7));
        Device.DataPathEvents before = device.dataPathEvents();

        assertThat(a.stopQueue(1)).contains(at(TX, 7));
        assertThat(a.isQueueRunning(0)).as("rx runs on").isTrue();
        assertThat(a.isQueueRunning(1)).isFalse();
        assertThat(a.stopQueue(1)).as("a stopped queue has no position to give").isEmpty();
        assertThatThrownBy(() -> a.setMemory(GuestMemory.empty())).as("rx still runs").hasMessageContaining("while the data path runs");

        a.startQueue(TX, at(TX, 7), kick1, Notifier.of(call1b));
        assertThat(fn.queueOps).containsExactly("stop 1", "start 1");
        assertThat(fn.queueStarted.get(1).resume()).isEqualTo(at(TX, 7));
        assertThat(fn.queueStarted.get(1).kick()).isSameAs(kick1);
        assertThat(a.isQueueRunning(1)).isTrue();
        assertThat(fn.starts).as("the device was started once, at DRIVER_OK").isEqualTo(1);
        assertThat(fn.resets).isZero();
        assertThat(device.dataPathEvents()).isEqualTo(new Device.DataPathEvents(before.starts(), before.stops(), before.pauses(), 1, 1, 0));
        assertThat(device.status().isLive()).isTrue();
    }

    @Test
    void aModelThatCannotFallsBackToTheWholeDeviceAndEveryOtherQueueKeepsItsPosition() {
        live();
        fn.queues = List.of(at(RX, 3), at(TX, 9));

        assertThat(a.stopQueue(1)).contains(at(TX, 9));
        assertThat(fn.resets).as("the whole data path stopped").isEqualTo(1);
        assertThat(fn.starts).as("rx alone cannot run: tx is required").isEqualTo(1);
        assertThat(a.isQueueRunning(0)).isFalse();
        assertThat(device.status().isLive()).as("the device stays live, waiting for tx").isTrue();

        a.startQueue(TX, at(TX, 9), kick1, Notifier.NONE);
        assertThat(fn.starts).isEqualTo(2);
        assertThat(fn.lastStart.queue(0).orElseThrow().resume()).as("rx carries on from where the stop saved it").isEqualTo(at(RX, 3));
        assertThat(fn.lastStart.queue(1).orElseThrow().resume()).isEqualTo(at(TX, 9));
        assertThat(a.isQueueRunning(0) && a.isQueueRunning(1)).isTrue();
    }

    @Test
    void aQueueThatCannotStartStaysStoppedAndTheOthersRunOn() {
        fn.resetsQueues = true;
        live();
        a.stopQueue(1);
        fn.failStart = true;
        assertThatThrownBy(() -> a.startQueue(TX, null, kick1, Notifier.NONE)).hasMessageContaining("queue 1 cannot start");
        assertThat(a.isQueueRunning(1)).isFalse();
        assertThat(a.isQueueRunning(0)).isTrue();
        assertThat(device.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
        assertThatThrownBy(() -> a.startQueue(RX, null, kick0, Notifier.NONE)).as("rx runs").hasMessageContaining("runs; stop it first");
    }

    @Test
    void aReplacedCallDoorbellIsSignalledFromTheNextSignalOnWithoutAStop() {
        fn.resetsQueues = true;
        live();
        Notifier running = fn.lastStart.queue(1).orElseThrow().call();
        running.signal();
        assertThat(call1.drain()).isEqualTo(1);

        a.replaceCall(1, Notifier.of(call1b));
        assertThat(call1b.drain()).as("the new doorbell rings once, for a signal the old one may have swallowed").isEqualTo(1);
        running.signal();
        assertThat(call1b.drain()).as("the queue's doorbell now rings the new eventfd").isEqualTo(1);
        assertThat(call1.drain()).isZero();
        assertThat(fn.resets + fn.queueOps.size()).as("no stop, no restart").isZero();
        assertThat(device.dataPathEvents().callsReplaced()).isEqualTo(1);
    }

    @Test
    void newMemoryIsTakenOnceEveryQueueIsStoppedAndTheQueuesStartedNextUseIt() {
        fn.resetsQueues = true;
        live();
        a.stopQueue(0);
        a.stopQueue(1);
        GuestMemory next = GuestMemory.empty();
        a.setMemory(next);
        a.startQueue(RX, null, kick0, Notifier.NONE);
        assertThat(fn.queueStarted.get(0).memory()).isSameAs(next);
        assertThat(fn.starts).as("no whole restart").isEqualTo(1);
    }

    @Test
    void aFallbackStopThatFindsNoStableStateLeavesTheDeviceNeedingAReset() {
        live();
        fn.failQuiesce = true;
        assertThatThrownBy(() -> a.stopQueue(1)).isInstanceOf(DeviceException.class).hasMessageContaining("did not stop");
        assertThat(device.status().has(DeviceStatus.NEEDS_RESET)).isTrue();
        assertThat(a.isQueueRunning(0)).isFalse();
    }

    @Test
    void aQueueStopsAloneInsideAnOperatorsPauseAndTheResumeLeavesItStopped() {
        fn.resetsQueues = true;
        live();
        fn.queues = List.of(at(TX, 9));
        device.pause();

        assertThat(a.stopQueue(1)).as("its position while paused, from the model").contains(at(TX, 9));
        assertThat(fn.queueOps).containsExactly("stop 1");
        device.resume();
        assertThat(fn.resumes).isEqualTo(1);
        assertThat(a.isQueueRunning(1)).as("the resume does not start a queue its driver stopped").isFalse();
        assertThat(a.isQueueRunning(0)).isTrue();
    }

    @Test
    void aQueueStartedInsideAnOperatorsPauseWaitsForTheResume() throws Exception {
        fn.resetsQueues = true;
        live();
        fn.queues = List.of(at(TX, 9));
        assertThat(a.stopQueue(1)).contains(at(TX, 9));
        device.pause();

        var failure = new java.util.concurrent.atomic.AtomicReference<Throwable>();
        Thread driver = Thread.ofPlatform().name("driver").start(() -> {
            try {
                a.startQueue(TX, at(TX, 9), kick1, Notifier.of(call1));
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        // Waiting on the device (its lock let go), not refused: the condition, not a fixed time.
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(4);
        while (driver.getState() != Thread.State.TIMED_WAITING && driver.isAlive() && System.nanoTime() < deadline) Thread.onSpinWait();
        assertThat(driver.getState()).as("the start waits out the pause").isEqualTo(Thread.State.TIMED_WAITING);
        assertThat(fn.queueOps).as("nothing started inside the pause").containsExactly("stop 1");
        assertThat(device.dataPathEvents().queueStarts()).isZero();

        device.resume();
        driver.join(java.time.Duration.ofSeconds(30));
        assertThat(driver.isAlive()).isFalse();
        assertThat(failure.get()).isNull();
        assertThat(fn.queueOps).containsExactly("stop 1", "start 1");
        assertThat(a.isQueueRunning(1)).isTrue();
    }

    @Test
    void queuesAreStoppedAloneOnlyWhileTheDeviceIsLive() {
        a.setQueue(RX);
        assertThatThrownBy(() -> a.stopQueue(0)).hasMessageContaining("only while the device is live");
        assertThatThrownBy(() -> a.startQueue(RX, null, kick0, Notifier.NONE)).hasMessageContaining("only while the device is live");
    }
}
