package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Multiqueue (VIRTIO_NET_F_MQ): the device offers {@code queue-pairs} pairs with the control queue after them,
 * the driver picks how many carry traffic with MQ_VQ_PAIRS_SET (checked: 1..max, only with MQ), every tx queue is
 * drained by a worker of its own into the switch at the same time as the others, and received frames go to an rx
 * queue by their flow, so one flow stays on one queue.
 */
class VirtioNetMultiqueueTest {
    static final Duration WAIT = Duration.ofSeconds(30);
    final Container container = VirtioNetExchangeTest.newContainer();
    final List<MqGuest> guests = new ArrayList<>();

    MqGuest guest(Map<String, String> params, long want) throws Exception {
        MqGuest g = new MqGuest(container.addDevice(VirtioNetModel.TYPE, -1L, params), want);
        guests.add(g);
        return g;
    }

    @AfterEach
    void close() {
        guests.forEach(MqGuest::close);
    }

    static VirtioNetDevice fn(MqGuest g) {
        return (VirtioNetDevice) g.a.function();
    }

    SwitchPort port(MqGuest g) {
        return Networks.of(container).require("default").ports().stream().filter(p -> p.backend() == g.a.function()).findFirst().orElseThrow();
    }

    @Test
    void mqIsOfferedWithTheDevicesPairsInConfigAndTheControlQueueAfterThem() throws Exception {
        MqGuest g = guest(Map.of("queue-pairs", "3"), MqGuest.plain(true));
        assertThat(VirtioNetFeatures.MQ.in(g.features)).isTrue();
        assertThat(g.maxPairs).isEqualTo(3);
        assertThat(g.device.queueStats()).extracting(q -> q.name()).containsExactly("rx0", "tx0", "rx1", "tx1", "rx2", "tx2", "ctrl");
        assertThat(g.ctrlIndex).isEqualTo(6);
        assertThat(g.setPairs(3)).as("the control queue answers at index 6").isZero();
        assertThat(g.device.queueStats()).allSatisfy(q -> assertThat(q.running()).as(q.name()).isTrue());
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "0")))
                .isInstanceOf(BusException.class).hasMessageContaining("'queue-pairs' must be in 1..16: 0");
        assertThatThrownBy(() -> container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "17")))
                .hasMessageContaining("'queue-pairs' must be in 1..16: 17");
        // Without MQ the driver has one pair and the control queue at 2, as before.
        MqGuest one = guest(Map.of("queue-pairs", "3"), MqGuest.plain(false));
        assertThat(one.ctrlIndex).isEqualTo(2);
        assertThat(one.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, new byte[] {1})).as("CTRL_RX not taken: ERR, but answered")
                .isEqualTo(ControlQueue.ERR);
    }

    @Test
    void aDeviceWithOneQueuePairDoesNotOfferMqAndADriverThatAcksItAnywayIsRefused() throws Exception {
        Device one = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "1"));
        assertThat(VirtioNetFeatures.MQ.in(one.features().offered())).as("MQ offered with queue-pairs=1").isFalse();
        assertThat(VirtioNetFeatures.CTRL_VQ.in(one.features().offered())).isTrue();
        assertThat(one.featureCatalog().names(one.features().offered())).doesNotContain(VirtioNetFeatures.MQ.name());
        var a = one.attach("mq-anyway", new dev.jvbus.core.bus.DeviceObserver() { });
        try {
            a.writeStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
            assertThatThrownBy(() -> {
                a.ackFeatures(MqGuest.plain(true));
                a.addStatus(DeviceStatus.FEATURES_OK);
            }).as("FEATURES_OK with MQ acked").hasMessageContaining("not offered").hasMessageContaining(VirtioNetFeatures.MQ.name());
        } finally {
            a.close();
        }
        MqGuest g = guest(Map.of("queue-pairs", "1"), MqGuest.plain(true));
        assertThat(VirtioNetFeatures.MQ.in(g.features)).isFalse();
        assertThat(g.ctrlIndex).as("the control queue where a driver without MQ looks").isEqualTo(2);
        assertThat(guest(Map.of("queue-pairs", "2"), MqGuest.plain(true)).features & VirtioNetFeatures.MQ.mask()).as("two pairs").isNotZero();
    }

    @Test
    void pairsSetTakesOneToMaxAndRefusesTheRestWhileTheDeviceKeepsServing() throws Exception {
        MqGuest a = guest(Map.of("queue-pairs", "4"), MqGuest.plain(true));
        MqGuest b = guest(Map.of(), MqGuest.plain(false));
        assertThat(a.setPairs(0)).as("0 pairs").isEqualTo(ControlQueue.ERR);
        assertThat(a.setPairs(5)).as("more than max_virtqueue_pairs").isEqualTo(ControlQueue.ERR);
        assertThat(a.setPairs(0x8001)).as("more than the spec's 0x8000").isEqualTo(ControlQueue.ERR);
        assertThat(a.command(NetControl.CLASS_MQ, NetControl.MQ_VQ_PAIRS_SET, new byte[] {2})).as("data of 1 byte").isEqualTo(ControlQueue.ERR);
        assertThat(a.setPairs(4)).isZero();
        assertThat(a.setPairs(1)).isZero();
        assertThat(a.setPairs(2)).isZero();
        assertThat(b.setPairs(1)).as("a driver without MQ has no pairs to set").isEqualTo(ControlQueue.ERR);
        assertThat(fn(a).controlStats()).isEqualTo(new VirtioNetDevice.ControlStats(3, 4));
        assertThat(a.device.status().has(DeviceStatus.NEEDS_RESET) || b.device.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
        b.send(0, MqGuest.udp(a.mac(), b.mac(), 5000, 7, 1));
        await(() -> fn(a).stats().rxFrames() == 1, "a frame reaches a");
    }

    @Test
    void anRxQueueStoppedInsideAnOperatorsPauseLeavesTheOtherRxQueueHeldUntilTheResume() throws Exception {
        MqGuest a = guest(Map.of("queue-pairs", "2"), MqGuest.plain(true));
        MqGuest b = guest(Map.of(), MqGuest.plain(false));
        assertThat(a.setPairs(2)).isZero();
        a.device.pause();
        assertThat(a.a.stopQueue(0)).as("rx0 stops inside the pause, at its position").isPresent();

        b.send(0, MqGuest.udp(a.mac(), b.mac(), 5000, 7, 1));
        await(() -> fn(a).stats().rxDropped(DropReason.PORT_DOWN) == 1, "a frame for a inside the pause is dropped at its closed rx");
        assertThat(fn(a).stats().rxFrames()).as("nothing entered rx1 while the pause held it").isZero();

        a.device.resume();
        b.send(0, MqGuest.udp(a.mac(), b.mac(), 5000, 7, 2));
        await(() -> fn(a).stats().rxFrames() == 1, "after the resume a frame reaches rx1 (rx0 is stopped)");
        assertThat(a.device.isQueueRunning(0)).as("the resume does not start rx0 again").isFalse();
    }

    @Test
    void eachFlowStaysOnOneRxQueueAndTheFlowsSpreadOverThePairsTheDriverSet() throws Exception {
        MqGuest rx = guest(Map.of("queue-pairs", "4"), MqGuest.plain(true));
        MqGuest tx = guest(Map.of(), MqGuest.plain(false));
        // Before MQ_VQ_PAIRS_SET only the first pair carries traffic (virtio 1.x 5.1.6.5.5).
        Map<Integer, Set<Integer>> before = exchange(tx, rx, 16, 2, 0);
        assertThat(before.values()).allSatisfy(queues -> assertThat(queues).containsExactly(0));

        assertThat(rx.setPairs(4)).isZero();
        Map<Integer, Set<Integer>> flows = exchange(tx, rx, 32, 4, 100);
        assertThat(flows.values()).as("each flow on one rx queue").allSatisfy(queues -> assertThat(queues).hasSize(1));
        assertThat(flows.values().stream().flatMap(Set::stream).distinct().sorted().toList()).as("rx queues used").containsExactly(0, 1, 2, 3);
        // A frame without a flow (not IP) goes to the first pair.
        tx.send(0, Frames.frame(rx.mac(), tx.mac(), 60, 9));
        await(() -> fn(rx).stats().pairs().get(0).rxFrames() == before.size() * 2L + countOn(flows, 0) * 4L + 1, "the non-IP frame on rx0");

        // Fewer pairs: the flows re-spread over the first two, each again on one queue.
        assertThat(rx.setPairs(2)).isZero();
        Map<Integer, Set<Integer>> two = exchange(tx, rx, 32, 2, 200);
        assertThat(two.values()).allSatisfy(queues -> assertThat(queues).hasSize(1).isSubsetOf(0, 1));
        assertThat(two.values().stream().flatMap(Set::stream).distinct().count()).isEqualTo(2);
        assertThat(fn(rx).stats().rxDrops()).isEmpty();
    }

    /**
     * The pairs the driver set are the device's, not the control ring's (virtio 1.x 5.1.6.5.5): with the control queue
     * stopped, and after it starts again, frames stay on the pairs the driver set; only a device reset goes back to one.
     */
    @Test
    void thePairsTheDriverSetHoldWhileItsControlQueueIsStoppedAndAfterItRestarts() throws Exception {
        MqGuest rx = guest(Map.of("queue-pairs", "4"), MqGuest.plain(true));
        MqGuest tx = guest(Map.of(), MqGuest.plain(false));
        assertThat(rx.setPairs(4)).isZero();
        assertThat(rx.setPairs(1)).isZero();
        List<Throwable> failed = new ArrayList<>();
        rx.restartCtrl(() -> {
            try {
                Map<Integer, Set<Integer>> stopped = exchange(tx, rx, 32, 2, 400);
                assertThat(stopped.values()).as("control queue stopped: still the one pair the driver set")
                        .allSatisfy(q -> assertThat(q).containsExactly(0));
            } catch (Throwable t) {
                failed.add(t);
            }
        });
        if (!failed.isEmpty()) throw new AssertionError(failed.getFirst());
        Map<Integer, Set<Integer>> restarted = exchange(tx, rx, 32, 2, 500);
        assertThat(restarted.values()).as("control queue running again").allSatisfy(q -> assertThat(q).containsExactly(0));
        assertThat(rx.setPairs(2)).as("and it takes commands again").isZero();
        Map<Integer, Set<Integer>> two = exchange(tx, rx, 32, 2, 600);
        assertThat(two.values().stream().flatMap(Set::stream).distinct().sorted().toList()).containsExactly(0, 1);
        assertThat(fn(rx).stats().rxDrops()).isEmpty();
    }

    static long countOn(Map<Integer, Set<Integer>> flows, int queue) {
        return flows.values().stream().filter(q -> q.contains(queue)).count();
    }

    /** {@code flows} UDP flows of {@code each} frames from {@code from} to {@code to}: which rx queues each arrived on. */
    Map<Integer, Set<Integer>> exchange(MqGuest from, MqGuest to, int flows, int each, int portBase) throws Exception {
        int seq = 0;
        for (int i = 0; i < each; i++)
            for (int f = 0; f < flows; f++) from.send(0, MqGuest.udp(to.mac(), from.mac(), 10_000 + portBase + f, 9, seq++));
        Map<Integer, Set<Integer>> seen = new HashMap<>();
        int got = 0;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (got < flows * each) {
            for (int q = 0; q < to.pairs(); q++)
                for (byte[] frame : to.poll(q)) {
                    seen.computeIfAbsent(MqGuest.udpSport(frame), k -> new TreeSet<>()).add(q);
                    got++;
                }
            if (System.nanoTime() > deadline) throw new AssertionError("received " + got + " of " + flows * each + ": " + fn(to).stats());
            Thread.onSpinWait();
        }
        return seen;
    }

    @Test
    void everyTxQueueIsDrainedByItsOwnWorkerAtOnceAndItsFramesAllForwardedInOrder() throws Exception {
        int n = 3000;
        // poll=own: a thread per tx queue, which this test names (by default the container's poll groups serve them).
        MqGuest a = guest(Map.of("queue-pairs", "4", "poll", "own"), MqGuest.plain(true));
        MqGuest b = guest(Map.of("queue-pairs", "4", "poll", "own"), MqGuest.plain(true));
        assertThat(b.setPairs(4)).isZero();
        Set<String> threads = new TreeSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet())
            if (t.getName().startsWith(fn(a).name() + "-tx")) threads.add(t.getName().substring(fn(a).name().length()));
        assertThat(threads).containsExactlyInAnyOrder("-tx", "-tx1", "-tx2", "-tx3");

        AtomicLongArray received = new AtomicLongArray(4);   // per tx queue of a, what b received of it
        List<Thread> senders = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int p = 0; p < 4; p++) {
            int pair = p;
            senders.add(Thread.ofPlatform().name("mq-sender-" + p).start(() -> {
                try {
                    for (int i = 0; i < n; i++) {
                        // Paced to b's rx buffers, so nothing is dropped for want of one and the counts are exact.
                        long deadline = System.nanoTime() + WAIT.toNanos();
                        while (i - received.get(pair) > 32) {
                            if (System.nanoTime() > deadline) throw new AssertionError("b stopped receiving from tx" + pair);
                            Thread.onSpinWait();
                        }
                        a.send(pair, MqGuest.udp(b.mac(), a.mac(), 20_000 + pair, 9, i));
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }));
        }
        int[] next = new int[4];
        long deadline = System.nanoTime() + WAIT.toNanos();
        Map<Integer, Set<Integer>> rxQueuesOfFlow = new HashMap<>();
        while (sum(received) < 4L * n && failures.isEmpty()) {
            for (int q = 0; q < 4; q++)
                for (byte[] f : b.poll(q)) {
                    int pair = MqGuest.udpSport(f) - 20_000;
                    assertThat(MqGuest.udpSeq(f)).as("frames of tx%d in the order sent", pair).isEqualTo(next[pair]++);
                    rxQueuesOfFlow.computeIfAbsent(pair, k -> new TreeSet<>()).add(q);
                    received.incrementAndGet(pair);
                }
            if (System.nanoTime() > deadline) throw new AssertionError("b received " + received + " of " + n + " each: " + fn(b).stats());
        }
        for (Thread t : senders) t.join(WAIT.toMillis());
        assertThat(failures).isEmpty();
        for (int p = 0; p < 4; p++) assertThat(received.get(p)).as("from tx%d", p).isEqualTo(n);
        await(() -> fn(a).stats().pairs().stream().allMatch(s -> s.txFrames() == n), "a's per-queue tx counters");
        assertThat(fn(a).stats().txFrames()).isEqualTo(4L * n);
        assertThat(port(a).framesIn()).as("the switch port counted every frame its four senders took in").isEqualTo(4L * n);
        assertThat(port(a).stats().rxFrames()).isEqualTo(4L * n);
        assertThat(fn(b).stats().rxFrames()).isEqualTo(4L * n);
        assertThat(rxQueuesOfFlow.values()).allSatisfy(q -> assertThat(q).hasSize(1));
        // No cross-talk: a heard nothing of its own frames, on any queue.
        for (int q = 0; q < 4; q++) assertThat(a.poll(q)).as("a's rx%d", q).isEmpty();
        assertThat(fn(a).stats().rxFrames()).isZero();
    }

    @Test
    void aDisabledRxQueueGetsNoFramesAndItsFlowsMoveToTheOthers() throws Exception {
        MqGuest rx = guest(Map.of("queue-pairs", "2"), MqGuest.plain(true) & ~VirtioNetFeatures.CTRL_VQ.mask());
        MqGuest tx = guest(Map.of(), MqGuest.plain(false));
        // No control queue of ours (a vhost-user front-end serves its own): every enabled pair takes frames.
        Map<Integer, Set<Integer>> both = exchange(tx, rx, 16, 2, 300);
        assertThat(both.values().stream().flatMap(Set::stream).distinct().sorted().toList()).containsExactly(0, 1);
        rx.a.setQueueActive(VirtioNetModel.rxQueue(1), false);   // vhost-user SET_VRING_ENABLE 0
        Map<Integer, Set<Integer>> one = exchange(tx, rx, 16, 2, 300);
        assertThat(one.values()).allSatisfy(q -> assertThat(q).containsExactly(0));
        assertThat(fn(rx).stats().rxDrops()).isEmpty();
    }

    @Test
    void thePairCountIsSavedAndRestoredAndACountTheDeviceCannotHaveIsRefused() throws Exception {
        MqGuest g = guest(Map.of("queue-pairs", "4"), MqGuest.plain(true));
        assertThat(g.setPairs(3)).isZero();
        g.device.pause();
        DeviceState saved = g.device.save();
        assertThat(((VirtioNetState) saved.model()).queuePairs()).isEqualTo(3);
        String json = StateCodec.encodeToString(saved);
        Container there = VirtioNetExchangeTest.newContainer();
        Device restored = there.restoreDevice(StateCodec.decode(json, dev.jvbus.core.bus.Bus.withDiscoveredModels().models()::stateSchema));
        assertThat(((VirtioNetState) restored.save().model()).queuePairs()).as("carried over").isEqualTo(3);
        String tooMany = json.replace("\"queuePairs\":3", "\"queuePairs\":5");
        Container third = VirtioNetExchangeTest.newContainer();
        assertThatThrownBy(() -> third.restoreDevice(StateCodec.decode(tooMany, dev.jvbus.core.bus.Bus.withDiscoveredModels().models()::stateSchema)))
                .hasMessageContaining("saved queue pairs 5: this device has 4");
        g.device.resume();
    }

    @Test
    void pickingTheRxQueueByFlowAllocatesNothingPerFrame() throws Exception {
        MqGuest rx = guest(Map.of("queue-pairs", "4"), MqGuest.plain(true));
        assertThat(rx.setPairs(4)).isZero();
        SwitchPort sender = Networks.of(container).require("default").join(new L2SwitchTestPort());
        java.lang.foreign.MemorySegment[] flows = new java.lang.foreign.MemorySegment[64];
        long src = MacAddress.parse("02:00:00:00:0c:01");
        for (int f = 0; f < flows.length; f++) flows[f] = java.lang.foreign.MemorySegment.ofArray(MqGuest.udp(rx.mac(), src, 50_000 + f, 9, f));
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long bytes = 0;
        int frames = 0;
        for (int round = 0; round < 400; round++) {
            long before = mx.getCurrentThreadAllocatedBytes();
            for (var f : flows) sender.send(f, 0, (int) f.byteSize());   // the delivery (hash, pick, copy) runs on this thread
            long after = mx.getCurrentThreadAllocatedBytes();
            if (round >= 100) {   // after warm-up
                bytes += after - before;
                frames += flows.length;
            }
            for (int q = 0; q < 4; q++) rx.poll(q);   // the driver reposts (not measured: the test's side)
        }
        System.out.printf("multiqueue rx: %d bytes allocated delivering %d frames over 4 rx queues%n", bytes, frames);
        assertThat(fn(rx).stats().pairs()).allSatisfy(p -> assertThat(p.rxFrames()).isPositive());
        assertThat(bytes).as("bytes allocated delivering %d frames", frames).isLessThan(16 * 1024);
    }

    /** A port that only sends (the switch delivers nothing to it in this test). */
    static final class L2SwitchTestPort implements dev.jvbus.net.NetPort {
        @Override public String name() { return "flows"; }

        @Override public dev.jvbus.net.DropReason deliver(java.lang.foreign.MemorySegment frame, long offset, int length) { return null; }
    }

    static long sum(AtomicLongArray a) {
        long s = 0;
        for (int i = 0; i < a.length(); i++) s += a.get(i);
        return s;
    }

    static void await(java.util.function.BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out: " + what);
            Thread.sleep(1);
        }
    }

    @Test
    void theFlowHashIsSymmetricAndIgnoresFramesWithoutAFlow() {
        long x = MacAddress.parse("02:00:00:00:00:01"), y = MacAddress.parse("02:00:00:00:00:02");
        byte[] ab = MqGuest.udp(y, x, 1234, 80, 0), ba = MqGuest.udp(x, y, 80, 1234, 0);
        java.nio.ByteBuffer.wrap(ba).putInt(26, 0xc0000202).putInt(30, 0xc0000201);   // addresses swapped too
        var sa = java.lang.foreign.MemorySegment.ofArray(ab);
        var sb = java.lang.foreign.MemorySegment.ofArray(ba);
        assertThat(FlowHash.of(sa, 0, ab.length)).isNotNegative().isEqualTo(FlowHash.of(sb, 0, ba.length));
        byte[] other = MqGuest.udp(y, x, 1235, 80, 0);
        assertThat(FlowHash.of(java.lang.foreign.MemorySegment.ofArray(other), 0, other.length)).isNotEqualTo(FlowHash.of(sa, 0, ab.length));
        byte[] arp = Frames.frame(y, x, 60, 1);
        assertThat(FlowHash.of(java.lang.foreign.MemorySegment.ofArray(arp), 0, arp.length)).isEqualTo(FlowHash.NONE);
        assertThat(FlowHash.of(sa, 0, 20)).as("too short for an IPv4 header").isEqualTo(FlowHash.NONE);
        assertThat(FlowHash.pick(FlowHash.NONE, 4)).isZero();
        for (int h : new int[] {0, 1, Integer.MAX_VALUE}) assertThat(FlowHash.pick(h, 3)).isBetween(0, 2);
    }
}
