package dev.jvbus.connector.shm.restart;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.client.ResilientBus;
import dev.jvbus.connector.shm.client.ResilientBus.Backoff;
import dev.jvbus.connector.shm.client.ResilientBus.State;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.VirtioFeatures;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Issue 10, restart without loss, shm side: the bus, a JVM of its own, is SIGKILLed under a client that streams
 * sequence-numbered frames from one of its devices to the other and started again on the same socket path; the
 * client reconnects by itself, resumes both devices where their rings are, and sees every frame exactly once.
 * How long the bus stays down is {@code jvbus.restart.downMillis} (1 s here; run it with 300000 to show that five
 * minutes down disables nothing), how many frames {@code jvbus.restart.frames}, how many kills
 * {@code jvbus.restart.kills}. {@code jvbus.restart.withoutDeliveryLog=true} runs it without the receiver's
 * delivery log, to see the duplicates it prevents.
 */
class RestartWithoutLossTest {

    @Test
    void aStreamThroughTheBusSeesEveryFrameExactlyOnceAcrossSigkillsAndRestartsOfTheBus() throws Exception {
        long downMillis = Long.getLong("jvbus.restart.downMillis", 1_000);
        long frames = Long.getLong("jvbus.restart.frames", 300_000);
        int kills = Integer.getInteger("jvbus.restart.kills", 3);
        boolean withoutLog = Boolean.getBoolean("jvbus.restart.withoutDeliveryLog");
        List<String> states = new CopyOnWriteArrayList<>();
        try (RestartHarness buses = new RestartHarness()) {
            buses.start();
            try (ResilientBus bus = ResilientBus.connect(buses.socket(), "restart-stream", Backoff.DEFAULT, listener(states))) {
                FrameStream stream = new FrameStream(bus, withoutLog);
                AtomicReference<Throwable> controllerFailed = new AtomicReference<>();
                Thread controller = Thread.ofPlatform().name("restart-controller").start(() -> {
                    try {
                        for (int k = 1; k <= kills; k++) {
                            long at = frames * k / (kills + 1);
                            while (stream.distinct < at) Thread.sleep(2);
                            buses.kill();
                            Thread.sleep(downMillis);   // the outage itself: the parameter under test, not a wait for a condition
                            buses.start();
                            if (!bus.awaitState(State.CONNECTED, Duration.ofSeconds(120)))
                                throw new AssertionError("not resumed 120 s after restart " + k + ": " + bus.state() + " (" + bus.reason()
                                        + "); the bus's output:\n" + buses.output());
                        }
                    } catch (Throwable t) {
                        controllerFailed.set(t);
                    }
                });
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240) + TimeUnit.MILLISECONDS.toNanos(downMillis * kills);
                stream.run(frames, deadline);
                controller.join(TimeUnit.SECONDS.toMillis(60));
                System.out.printf("restart (shm): %d kills, down %d ms each, %s: sent %d, received %d, lost %d, duplicated %d, longest gap"
                                + " between frames %d ms, last resume %d ms after the connection ended; states %s%n",
                        kills, downMillis, withoutLog ? "WITHOUT delivery log" : "with delivery log", stream.sent, stream.distinct,
                        stream.lost(), stream.duplicates, TimeUnit.NANOSECONDS.toMillis(stream.maxGapNanos), bus.lastGap().toMillis(), states);
                assertThat(controllerFailed.get()).as("the kill/restart controller").isNull();
                assertThat(bus.outages()).as("outages the client lived through").isEqualTo(kills);
                assertThat(bus.state()).isEqualTo(State.CONNECTED);
                assertThat(stream.sent).as("frames sent").isEqualTo(frames);
                assertThat(stream.duplicates).as("frames received twice").isZero();
                assertThat(stream.outOfRange).as("frames that were never sent").isZero();
                assertThat(stream.lost()).as("frames lost; bus output:\n" + buses.output()).isZero();
            }
        }
    }

    /**
     * The kill window made certain: the bus halts inside the delivery of one frame, after the receiver's rx used
     * index for it was published and before the sender's tx used index was ({@link RestartBusProcess.Tripwire}).
     * Resumed, the sender's ring takes that frame again; the receiver's delivery log says it has it. Without the
     * log ({@code jvbus.restart.withoutDeliveryLog=true}) the frame arrives twice.
     */
    @Test
    void aFrameTheBusDeliveredButDiedBeforeCompletingIsReplayedAfterTheRestartAndArrivesOnce() throws Exception {
        boolean withoutLog = Boolean.getBoolean("jvbus.restart.withoutDeliveryLog");
        long frames = 20_000;
        try (RestartHarness buses = new RestartHarness()) {
            buses.start(RestartHarness.ALL_FEATURES, "-", "tripwire");
            try (ResilientBus bus = ResilientBus.connect(buses.socket(), "restart-window", Backoff.DEFAULT, ResilientBus.Listener.NONE)) {
                FrameStream stream = new FrameStream(bus, withoutLog);
                stream.broadcastSeq = frames / 2;
                AtomicReference<Throwable> controllerFailed = new AtomicReference<>();
                Thread controller = Thread.ofPlatform().name("restart-controller").start(() -> {
                    try {
                        if (!buses.awaitDeath(240)) throw new AssertionError("the tripwire never fired; bus output:\n" + buses.output());
                        assertThat(buses.output()).contains("TRIPPED");
                        buses.start();
                    } catch (Throwable t) {
                        controllerFailed.set(t);
                    }
                });
                stream.run(frames, System.nanoTime() + TimeUnit.SECONDS.toNanos(300));
                controller.join(TimeUnit.SECONDS.toMillis(60));
                System.out.printf("restart (shm, tripwire after the rx publish), %s: sent %d, received %d, lost %d, duplicated %d,"
                                + " longest gap %d ms%n", withoutLog ? "WITHOUT delivery log" : "with delivery log", stream.sent, stream.distinct,
                        stream.lost(), stream.duplicates, TimeUnit.NANOSECONDS.toMillis(stream.maxGapNanos));
                assertThat(controllerFailed.get()).as("the restart controller").isNull();
                assertThat(bus.outages()).isEqualTo(1);
                assertThat(stream.seen.get((int) stream.broadcastSeq)).as("the frame in the window arrived").isTrue();
                assertThat(stream.duplicates).as("frames received twice").isZero();
                assertThat(stream.lost()).as("frames lost").isZero();
            }
        }
    }

    @Test
    void aRestartedBusThatNoLongerOffersTheFeaturesRefusesTheResumeAndTheClientGivesUpSayingWhy() throws Exception {
        String withoutEventIdx = Long.toHexString(~VirtioFeatures.EVENT_IDX.mask());
        assertRefusedAfterRestart(withoutEventIdx, "-", "does not offer [" + VirtioFeatures.EVENT_IDX.name() + "]");
    }

    @Test
    void aRestartedBusWhoseQueuesAreSmallerThanTheClientsRingsRefusesTheResumeAndTheClientGivesUpSayingWhy() throws Exception {
        assertRefusedAfterRestart(RestartHarness.ALL_FEATURES, "64", "of size 256: its size must be");
    }

    /**
     * A client with one device set up; the bus killed and started again as {@code limitHex} / {@code queueSize}
     * say: the client ends in GAVE_UP with the bus's reason, and the bus serves a client that sets the device up afresh.
     */
    private static void assertRefusedAfterRestart(String limitHex, String queueSize, String expected) throws Exception {
        List<String> states = new CopyOnWriteArrayList<>();
        try (RestartHarness buses = new RestartHarness()) {
            buses.start();
            try (ResilientBus bus = ResilientBus.connect(buses.socket(), "restart-refused", Backoff.DEFAULT, listener(states))) {
                ClientDevice d = bus.open(RestartBusProcess.RECEIVER);
                d.negotiate(FrameStream.FEATURES);
                DriverMemory mem = d.shareMemory("restart-refused", 1 << 20, FrameStream.RECEIVER_BASE);
                d.setUpQueues(mem, 256, 256);
                d.driverOk();
                buses.kill();
                buses.start(limitHex, queueSize);
                assertThat(bus.awaitState(State.GAVE_UP, Duration.ofSeconds(120))).as(bus.state() + ": " + bus.reason()).isTrue();
                assertThat(bus.reason()).contains("the bus refused").contains(expected);
                assertThat(states).containsExactly("RECONNECTING", "GAVE_UP");
                // The refusal was that session's: the bus serves the same device to a driver that sets it up afresh.
                try (BusClient fresh = BusClient.connect(buses.socket(), "afresh"); ClientDevice again = fresh.open(RestartBusProcess.RECEIVER)) {
                    again.negotiate(VirtioFeatures.VERSION_1.mask());
                    try (DriverMemory m2 = again.shareMemory("afresh", 1 << 20, FrameStream.RECEIVER_BASE)) {
                        again.setUpQueues(m2, 64, 64);
                        assertThat(again.driverOk().has(DeviceStatus.DRIVER_OK)).isTrue();
                        again.reset();
                    }
                }
                mem.close();
            }
        }
    }

    @Test
    void aClientWithAnAttemptLimitGivesUpWhenTheBusStaysDownAndSaysSo() throws Exception {
        List<String> states = new CopyOnWriteArrayList<>();
        try (RestartHarness buses = new RestartHarness()) {
            buses.start();
            Backoff fourTries = new Backoff(Duration.ofMillis(10), Duration.ofMillis(80), 4);
            try (ResilientBus bus = ResilientBus.connect(buses.socket(), "restart-limit", fourTries, listener(states))) {
                buses.kill();
                assertThat(bus.awaitState(State.GAVE_UP, Duration.ofSeconds(60))).as(bus.state() + ": " + bus.reason()).isTrue();
                assertThat(bus.reason()).startsWith("gave up after 4 attempts");
                assertThat(states).containsExactly("RECONNECTING", "GAVE_UP");
                assertThat(bus.client()).isNull();
            }
            assertThat(states).endsWith("CLOSED");
        }
    }

    @Test
    void theBackoffDoublesFromItsFirstDelayUpToItsCap() {
        Backoff b = new Backoff(Duration.ofMillis(20), Duration.ofSeconds(1), 0);
        assertThat(List.of(1, 2, 3, 4, 5, 6, 7, 30).stream().map(n -> b.delay(n).toMillis()).toList())
                .containsExactly(20L, 40L, 80L, 160L, 320L, 640L, 1000L, 1000L);
    }

    private static ResilientBus.Listener listener(List<String> states) {
        return new ResilientBus.Listener() {
            @Override public void stateChanged(State state, String why) { states.add(state.name()); }
        };
    }
}
