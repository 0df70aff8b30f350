package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.MacAddress;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code busy-poll=on} on venet: the tx worker's thread never sleeps, so the driver's shm-signal stays disabled and it
 * never kicks; a default device beside it, fed the same bursts, sleeps between them and is kicked awake.
 */
class VenetBusyPollTest {

    @Test
    void aBusyPolledTxQueueForwardsEverythingWithoutAKickWhileTheDefaultOneIsKicked() throws Exception {
        Container c = Frames.container();
        Device busyDevice = c.addDevice("venet", -1, Map.of("network", "lan", "busy-poll", "on"));
        Device plainDevice = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device sinkDevice = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest busy = new VenetGuest(Options.flat()).bringUp(busyDevice);
             VenetGuest plain = new VenetGuest(Options.flat()).bringUp(plainDevice);
             VenetGuest sink = new VenetGuest(Options.flat()).bringUp(sinkDevice)) {
            // A first frame each: the switch learns the sink, and the busy worker has been round once (it disables its
            // signal there; until then the ring asks for kicks, as every ring starts).
            sink.sendBlocking(frame(MacAddress.BROADCAST, sink.mac(), 60, 0));
            busy.sendBlocking(frame(sink.mac(), busy.mac(), 60, 1));
            plain.sendBlocking(frame(sink.mac(), plain.mac(), 60, 2));
            awaitTrue(() -> VenetSwitchTest.poll(sink) >= 2, "the first frames at the sink");
            awaitTrue(() -> VenetSwitchTest.fn(busy).txFrames == 1 && VenetSwitchTest.fn(plain).txFrames == 1, "both workers done");
            busy.kicks[1].drain();   // what the driver rang before the worker first went round: nobody drains it now
            long plainKicks = plainDevice.queueCounters(VenetWire.QUEUE_TX).kicks();
            long busyKicks = busyDevice.queueCounters(VenetWire.QUEUE_TX).kicks();

            int bursts = 20, each = 8;
            for (int burst = 1; burst <= bursts; burst++) {
                Thread.sleep(2);   // 40 times the default spin budget: a default worker goes to sleep in between
                for (int i = 0; i < each; i++) {
                    busy.sendBlocking(frame(sink.mac(), busy.mac(), 60 + i, 100L * burst + i));
                    plain.sendBlocking(frame(sink.mac(), plain.mac(), 60 + i, 100L * burst + i));
                }
                int want = 2 + 2 * each * burst;
                awaitTrue(() -> VenetSwitchTest.poll(sink) >= want, "burst " + burst + " at the sink");
            }
            // A kick would be either drained by a sleeping worker (and counted) or still in the eventfd (a busy one never drains).
            assertThat(busyDevice.queueCounters(VenetWire.QUEUE_TX).kicks() - busyKicks).as("the busy worker never slept on a kick").isZero();
            assertThat(busy.kicks[1].drain()).as("the busy-polled device's driver never kicked").isZero();
            assertThat(plainDevice.queueCounters(VenetWire.QUEUE_TX).kicks() - plainKicks)
                    .as("the default device's driver kicked its sleeping worker").isPositive();
            assertThat(VenetSwitchTest.fn(busy).txFrames).isEqualTo(1L + bursts * each);
            assertThat(VenetSwitchTest.fn(plain).txFrames).isEqualTo(1L + bursts * each);
            assertThat(sink.received).hasSize(2 + 2 * bursts * each);
        }
    }

    @Test
    void aBadBusyPollValueIsRefusedNamingTheParameter() {
        Container c = Frames.container();
        assertThatThrownBy(() -> c.addDevice("venet", -1, Map.of("busy-poll", "sometimes")))
                .hasStackTraceContaining("venet parameter 'busy-poll' must be 'on' or 'off'");
    }
}
