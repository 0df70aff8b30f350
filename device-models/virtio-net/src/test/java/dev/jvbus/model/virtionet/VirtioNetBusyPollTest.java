package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.net.MacAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code busy-poll=on}: a device's tx queues are served by a thread that never sleeps (a dedicated core, as a DPDK PMD
 * thread), in the container's busy-polling groups or on a thread of their own; their driver then never has to kick.
 * A device with the default beside them, fed the same way, sleeps between bursts and is kicked awake.
 */
class VirtioNetBusyPollTest {
    static final Duration WAIT = Duration.ofSeconds(10);
    @RegisterExtension
    final RunningGuests plain = new RunningGuests();
    @RegisterExtension
    final RunningGuests busyShared = new RunningGuests(Map.of("busy-poll", "on"));
    @RegisterExtension
    final RunningGuests busyOwn = new RunningGuests(Map.of("busy-poll", "on", "poll", "own"));

    @Test
    void busyPolledTxQueuesForwardEverythingWithoutAKickWhileTheDefaultOnesSleepAndAreKicked() throws Exception {
        Container c = VirtioNetExchangeTest.newContainer();
        GuestNet shared = busyShared.in(c), own = busyOwn.in(c), sleepy = plain.in(c), sink = plain.in(c);
        VirtioNetDevice ownFn = (VirtioNetDevice) own.a.function();
        assertThat(Thread.getAllStackTraces().keySet()).as("poll=own with busy-poll: the queue's own thread")
                .anySatisfy(t -> assertThat(t.getName()).isEqualTo(ownFn.name() + "-tx"));
        List<GuestNet> senders = List.of(shared, own, sleepy);
        // A first frame each: the switch learns every MAC, and each tx worker has been round once (a busy one
        // disarms its doorbell there; until then the ring asks for kicks, as every ring starts).
        for (GuestNet g : senders) g.send(frame(sink.mac(), g.mac(), 60, 0), GuestNet.TxLayout.ONE);
        sink.send(frame(MacAddress.BROADCAST, sink.mac(), 60, 0), GuestNet.TxLayout.ONE);
        assertThat(sink.receive(3, WAIT)).hasSize(3);
        for (GuestNet g : senders) g.drainTx(WAIT);
        long[] kicksBefore = senders.stream().mapToLong(g -> g.txq.kicksSent()).toArray();

        int bursts = 20, each = 8;
        for (int burst = 1; burst <= bursts; burst++) {
            Thread.sleep(2);   // 40 times the default spin budget: a default worker goes to sleep in between
            for (int i = 0; i < each; i++)
                for (GuestNet g : senders) g.send(frame(sink.mac(), g.mac(), 60 + i, burst * each + i), GuestNet.TxLayout.ONE);
            assertThat(sink.receive(3 * each, WAIT)).as("burst %d from all three", burst).hasSize(3 * each)
                    .allSatisfy(r -> assertThat(Frames.intact(r.frame())).isTrue());
            for (GuestNet g : senders) g.drainTx(WAIT);
        }
        assertThat(shared.txq.kicksSent() - kicksBefore[0]).as("the shared busy-polled queue's driver never kicked").isZero();
        assertThat(own.txq.kicksSent() - kicksBefore[1]).as("nor did the own-thread one's").isZero();
        assertThat(sleepy.txq.kicksSent() - kicksBefore[2]).as("the default device's driver kicked its sleeping worker").isPositive();
        for (GuestNet g : senders)
            assertThat(VirtioNetExchangeTest.deviceStats(g).txFrames()).isEqualTo(1 + (long) bursts * each);

        List<PollGroup> groups = c.resource(PollGroups.RESOURCE).groups();
        assertThat(groups).filteredOn(g -> g.name().equals(c.name() + "/busy-poll-0")).singleElement().satisfies(g -> {
            assertThat(g.doorbellWait().mode()).isEqualTo(DoorbellWait.Mode.PURE_SPIN);
            assertThat(g.doorbellWait().sleeps()).as("the busy-polling group never slept").isZero();
        });
        assertThat(groups).filteredOn(g -> g.doorbellWait().mode() == DoorbellWait.Mode.ADAPTIVE)
                .as("the default devices' groups slept between bursts").allSatisfy(g -> assertThat(g.doorbellWait().sleeps()).isPositive());
    }

    @Test
    void aBadBusyPollValueIsRefusedNamingTheParameter() {
        Container c = VirtioNetExchangeTest.newContainer();
        assertThatThrownBy(() -> c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("busy-poll", "always")))
                .hasStackTraceContaining("'busy-poll' must be 'on' or 'off'");
    }
}
