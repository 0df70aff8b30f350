package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameMeta;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Restart without loss with multiqueue (issue 10's delivery log, issue 18's MQ): a receiver whose frames go to
 * several rx queues by flow has every frame a sender replays after a bus restart exactly once, whichever rx queue
 * took it the first time and whichever takes the replay. The "bus" is a container: the receiver's device is dropped
 * with everything in flight, the same device is made on a new container, and the receiver's driver resumes it from
 * its rings and its log in its own memory, as the shm client does; the sender replays what its ring would.
 */
class DeliveryLogMultiqueueTest {
    static final Duration WAIT = Duration.ofSeconds(30);
    static final String RX_MAC = "02:00:00:00:1a:01";
    static final long SENDER = MacAddress.parse("02:00:00:00:1a:02");
    static final int FRAMES = 96, FLOWS = 16;

    MqGuest rx;
    /** Per sequence number, the rx queues it arrived on and how often. */
    final Map<Integer, Integer> arrivals = new TreeMap<>();
    final Map<Integer, Integer> queueOf = new HashMap<>();

    @AfterEach
    void close() {
        if (rx != null) rx.close();
    }

    static Device receiverOn(Container c) {
        return c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "4", "mac", RX_MAC));
    }

    static SwitchPort senderOn(Container c) {
        return Networks.of(c).require("default").join(new NetPort() {
            @Override public String name() { return "sender"; }

            @Override public DropReason deliver(MemorySegment frame, long offset, int length) { return null; }
        });
    }

    /** Frame {@code seq} of flow {@code seq % FLOWS}, at transmit position {@code seq} of the sender's queue 0. */
    void send(SwitchPort from, int seq, boolean replay) {
        byte[] f = MqGuest.udp(rx.mac(), SENDER, 40_000 + seq % FLOWS, 9, seq);
        from.send(MemorySegment.ofArray(f), 0, f.length, new FrameMeta().origin(NetPort.origin(seq, replay)));
    }

    /** Takes what arrives until {@code total} frames have, in all (duplicates counted). */
    void receiveUntil(int total) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (arrivals.values().stream().mapToInt(Integer::intValue).sum() < total) {
            for (int q = 0; q < rx.pairs(); q++)
                for (byte[] f : rx.poll(q)) {
                    int seq = MqGuest.udpSeq(f);
                    arrivals.merge(seq, 1, Integer::sum);
                    queueOf.put(seq, q);
                }
            if (System.nanoTime() > deadline) throw new AssertionError("received " + arrivals.size() + " distinct of " + total);
            Thread.onSpinWait();
        }
    }

    /**
     * The receiver (with its log) sets four pairs and takes {@link #FRAMES} frames from a sender over them; then the
     * bus dies and the receiver resumes the same device on a new one: the sender's port there, to replay from.
     */
    SwitchPort deliverOverFourPairsThenRestart() throws Exception {
        Container before = VirtioNetExchangeTest.newContainer();
        rx = new MqGuest(receiverOn(before), MqGuest.plain(true), true);
        assertThat(rx.setPairs(4)).isZero();
        SwitchPort s1 = senderOn(before);
        for (int seq = 0; seq < FRAMES; seq++) send(s1, seq, false);
        receiveUntil(FRAMES);
        assertThat(queueOf.values()).as("the flows went to several rx queues").anyMatch(q -> q != 0);
        Container after = VirtioNetExchangeTest.newContainer();
        rx.resumeOn(receiverOn(after));
        return senderOn(after);
    }

    @Test
    void aFrameReplayedAfterABusRestartArrivesOnceWhicheverRxQueueTookIt() throws Exception {
        // The bus dies: the sender's ring had not seen its last 64 frames returned, so it sends them again on the
        // restarted bus, marked as replays. The receiver's driver set its four pairs again (its ctrl queue resumed).
        SwitchPort s2 = deliverOverFourPairsThenRestart();
        assertThat(rx.setPairs(4)).isZero();
        for (int seq = FRAMES - 64; seq < FRAMES; seq++) send(s2, seq, true);
        // And then new frames: delivered, whatever queue they land on.
        for (int seq = FRAMES; seq < FRAMES + 32; seq++) send(s2, seq, false);
        receiveUntil(FRAMES + 32);
        VirtioNetDevice d = (VirtioNetDevice) rx.a.function();
        assertThat(d.rxReplaysSkipped).as("replays the log said the driver had").isEqualTo(64);
        Map<Integer, Integer> twice = new TreeMap<>();
        arrivals.forEach((seq, n) -> { if (n != 1) twice.put(seq, n); });
        assertThat(twice).as("frames (seq=times) not received exactly once").isEmpty();
        assertThat(arrivals).hasSize(FRAMES + 32);
    }

    @Test
    void aReplayRoutedToAnotherRxQueueThanTheFirstTimeIsStillSkipped() throws Exception {
        // Resumed without a control record, the driver has not set its pairs again yet: every replay goes to rx0.
        SwitchPort s2 = deliverOverFourPairsThenRestart();
        for (int seq = FRAMES - 64; seq < FRAMES; seq++) send(s2, seq, true);
        for (int seq = FRAMES; seq < FRAMES + 8; seq++) send(s2, seq, false);
        receiveUntil(FRAMES + 8);
        Map<Integer, Integer> twice = new TreeMap<>();
        arrivals.forEach((seq, n) -> { if (n != 1) twice.put(seq, n); });
        assertThat(twice).as("frames (seq=times) not received exactly once").isEmpty();
        for (int seq = FRAMES; seq < FRAMES + 8; seq++) assertThat(queueOf.get(seq)).as("new frame %d, one pair in use", seq).isZero();
    }
}
