package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.net.MacAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Back-end restart without loss, vhost-user side (issue 10): a bus in a JVM of its own
 * ({@link RestartableBusProcess}) is SIGKILLed while front-end A streams numbered frames through it
 * to front-end B, stays down for {@code jvbus.restart.downtime} (an ISO-8601 duration; PT1S in the
 * suite, PT5M for the documented run), and is started again at the same sockets. Both front-ends
 * ({@link ReconnectingFrontEnd}: their memory, rings, doorbells and the inflight buffers survive in the
 * test JVM) connect again, hand their inflight buffers back and set the rings up from base 0; the
 * stream goes on. Every frame A sent reaches B exactly once.
 *
 * <p>Where the kill lands: a frame the bus delivered to B before returning its tx buffer to A can only
 * be delivered again after a crash (the bus cannot know B got it), so the kill is aimed: the bus is
 * stopped (SIGSTOP), the inflight buffers read, and if a tx buffer the bus holds carries a frame B has
 * already received the bus runs on a little and is stopped again; otherwise it is SIGKILLed right there,
 * preferably (for up to {@link #PREFER_HOLDING} stops) while it holds buffers, whose resubmission is the
 * point. The report says how many buffers it held (a ring holds a buffer only while it copies it, so
 * mostly none: the suite's runs show the ring being taken over from the inflight buffer's used index, at
 * base 0; {@code SplitInflightLogTest} hands out held buffers in counter order).
 */
class BusRestartTest {
    static final Duration WAIT = Duration.ofSeconds(120);
    /** Stops tried for a moment where the bus holds buffers before any clean moment will do. */
    static final int PREFER_HOLDING = 300;

    private Path dir;
    private ChildJvm bus;
    private StreamGuest guestA, guestB;
    private ReconnectingFrontEnd feA, feB;

    @AfterEach
    void tearDown() throws Exception {
        if (guestA != null) guestA.stopAndJoin();
        if (guestB != null) guestB.stopAndJoin();
        if (bus != null) bus.close();
        if (feA != null) feA.close();
        if (feB != null) feB.close();
        if (guestA != null) guestA.close();
        if (guestB != null) guestB.close();
        if (dir != null) {
            try (var s = Files.list(dir)) { s.forEach(p -> p.toFile().delete()); }
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void aBusKilledMidStreamAndStartedAgainAtTheSameSocketsDeliversEveryFrameExactlyOnce() throws Exception {
        Duration downtime = Duration.parse(System.getProperty("jvbus.restart.downtime", "PT1S"));
        startBusAndGuests();
        guestA.sendLimit = Integer.MAX_VALUE;
        guestA.start(guestB);
        guestB.start(guestA);
        await(() -> guestB.received > 20_000, "the stream runs before the kill");

        int[] held = killAtACleanMoment();
        int sentAtKill = guestA.sent;
        long receivedAtKill = guestB.received;
        long killedAt = System.nanoTime();
        restartBusAfter(downtime);
        await(() -> guestB.received > receivedAtKill, "the stream goes on after the restart");
        long gapMillis = Duration.ofNanos(System.nanoTime() - killedAt).toMillis();
        await(() -> guestB.received > receivedAtKill + 20_000, "the stream runs after the restart");
        guestA.sendLimit = guestA.sent;   // no new frame after the one A may be sending at this moment
        guestA.stopAndJoin();
        int sent = guestA.sent;           // A's driver has ended: the count is final (read before, it missed that frame once)
        await(() -> guestB.received >= sent, "B received everything A sent");
        guestB.stopAndJoin();

        long received = guestB.received, distinct = guestB.distinctReceived(), dup = guestB.duplicates, lost = sent - distinct;
        System.out.printf("bus restart (vhost-user, down %s): frames sent %d (%d before the kill), received %d, lost %d, duplicated %d, "
                        + "gap %d ms (kill to the next frame at B), tx/rx buffers the bus held at the kill %d/%d%n",
                downtime, sent, sentAtKill, received, lost, dup, gapMillis, held[0], held[1]);
        assertThat(guestA.failure).isNull();
        assertThat(guestB.failure).isNull();
        assertThat(lost).as("frames lost").isZero();
        assertThat(dup).as("frames delivered twice").isZero();
        assertThat(received).isEqualTo(sent);
        assertThat(feA.connections).isEqualTo(2);
    }

    /**
     * The moment that lost a 64-frame batch once in three runs above, made certain: the bus halts at the end of
     * A's first tx batch, inside the publication of the batch at its receivers, before B's share is published
     * ({@link RestartableBusProcess.Tripwire}). A tx buffer the bus has given back to A by then must carry a
     * frame B's ring has published, or a bus dying there loses it for good: A has it back as sent, B's ring
     * resumes without it. So the tx worker publishes at the receivers first and its own tx used index after;
     * the other order fails here every time. Restarted, the bus takes A's held buffers again and B gets every
     * frame once.
     */
    @Test
    void aBusKilledWhilePublishingATxBatchAtItsReceiversHasNotGivenTheSenderItsBuffersBackAndLosesNoFrame() throws Exception {
        startBusAndGuests("tripwire");
        guestA.destination = MacAddress.BROADCAST;   // flooded in port order: the tripwire (joined first), then B
        guestA.sendLimit = StreamGuest.WINDOW;
        guestB.start(guestA);
        guestA.start(guestB);
        await(() -> !bus.process().isAlive(), "the tripwire halts the bus at the end of A's first batch");
        assertThat(bus.output()).contains("TRIPPED");

        int txUsed = guestA.usedIdx(StreamGuest.TX_USED), rxUsed = guestB.usedIdx(StreamGuest.RX_USED), held = feA.inFlight(1).length;
        System.out.printf("bus halted publishing A's tx batch at its receivers: A's tx used index %d, B's rx used index %d, A's tx buffers held %d%n",
                txUsed, rxUsed, held);
        assertThat(txUsed).as("tx buffers the bus gave back to A before it died (A's tx used index); each must carry a frame B's ring"
                + " had published (B's rx used index " + rxUsed + ")").isLessThanOrEqualTo(rxUsed);
        assertThat(held).as("A's tx buffers the bus held when it died (the batch)").isPositive();

        restartBusAfter(Duration.ZERO);
        await(() -> guestB.received >= StreamGuest.WINDOW, "B receives A's first batch after the restart");
        guestA.sendLimit = 2_000;   // and the stream goes on: a frame delivered twice would show as a duplicate
        await(() -> guestB.received >= 2_000, "the stream runs after the restart");
        guestA.stopAndJoin();
        guestB.stopAndJoin();
        assertThat(guestA.failure).isNull();
        assertThat(guestB.failure).isNull();
        assertThat(guestB.duplicates).as("frames delivered twice").isZero();
        assertThat(guestB.distinctReceived()).as("distinct frames B received of the " + guestA.sent + " A sent").isEqualTo(guestA.sent);
        assertThat(guestB.received).isEqualTo(guestA.sent);
    }

    /** A bus in a JVM of its own ({@code mode}: see {@link RestartableBusProcess}) and both guests set up on it, B first. */
    private void startBusAndGuests(String... mode) throws Exception {
        dir = Files.createTempDirectory("jvbus-restart");
        bus = startBus(mode);
        guestA = new StreamGuest("a", RestartableBusProcess.MAC_A);
        guestB = new StreamGuest("b", RestartableBusProcess.MAC_B);
        feA = new ReconnectingFrontEnd(guestA, dir.resolve("a.sock"));
        feB = new ReconnectingFrontEnd(guestB, dir.resolve("b.sock"));
        feB.connectAndSetUp(WAIT);
        feA.connectAndSetUp(WAIT);
    }

    /** The bus is gone: both front-ends notice, the bus stays away {@code down}, starts again, and both set up again. */
    private void restartBusAfter(Duration down) throws Exception {
        feA.lost();
        feB.lost();
        Thread.sleep(down.toMillis());   // the parameter under test: how long the back-end stays away
        bus = startBus();
        feB.connectAndSetUp(WAIT);   // the receiver first: a frame for a peer not back yet would be dropped at the switch
        feA.connectAndSetUp(WAIT);
    }

    private ChildJvm startBus(String... mode) throws InterruptedException {
        String[] args = new String[mode.length + 1];
        args[0] = dir.toString();
        System.arraycopy(mode, 0, args, 1, mode.length);
        ChildJvm b = ChildJvm.start(RestartableBusProcess.class, args);
        await(() -> b.output().contains("READY") || !b.process().isAlive(), "the bus listens");
        assertThat(b.process().isAlive()).as("bus output:\n" + b.output()).isTrue();
        return b;
    }

    /**
     * Stops the bus where no frame it already delivered to B is still held in A's tx ring, and kills it
     * there; returns the tx and rx buffers its inflight buffers recorded as held.
     */
    private int[] killAtACleanMoment() throws Exception {
        long pid = bus.pid();
        for (int attempt = 0; ; attempt++) {
            signal("STOP", pid);
            // Stopped: B's driver catches up on what the bus published, then nothing moves.
            await(() -> (guestB.received & 0xffff) == guestB.usedIdx(StreamGuest.RX_USED), "B read every frame published");
            int[] tx = feA.inFlight(1), rx = feB.inFlight(0);
            boolean delivered = false;
            for (int h : tx) delivered |= guestB.hasReceived(feA.txSeq(h));
            // Prefer a moment where the bus holds buffers (their resubmission is the point), within a bound.
            boolean holds = tx.length + rx.length > 0;
            if (!delivered && (holds || attempt >= PREFER_HOLDING) || attempt == 1_000) {
                assertThat(delivered).as("a moment with no delivered frame held, in 1000 tries").isFalse();
                bus.kill();   // SIGKILL, stopped or not
                return new int[] {tx.length, rx.length};
            }
            signal("CONT", pid);
            Thread.sleep(ThreadLocalRandom.current().nextInt(1, 10));
        }
    }

    private static void signal(String sig, long pid) throws Exception {
        Process p = new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).inheritIO().start();
        assertThat(p.waitFor()).as("kill -" + sig).isZero();
    }

    private void await(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!cond.getAsBoolean()) {
            if (guestA != null) assertThat(guestA.failure).as("guest A's driver").isNull();
            if (guestB != null) assertThat(guestB.failure).as("guest B's driver").isNull();
            assertThat(System.nanoTime() - deadline).as(what + " within " + WAIT + " (A sent " + (guestA == null ? 0 : guestA.sent)
                    + ", B received " + (guestB == null ? 0 : guestB.received) + "); bus output:\n" + (bus == null ? "" : bus.output())).isNegative();
            Thread.sleep(2);
        }
    }
}
