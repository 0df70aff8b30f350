package dev.jvbus.connector.vhostuser.hostile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import dev.jvbus.connector.shm.client.NetClientProcess;
import dev.jvbus.net.PortStats;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * Issue 9's hostile-client harness: hostile tenants attack one bus while a well-behaved tenant on the
 * same bus, the same container and the same switch keeps exchanging frames, and nothing it sent is lost.
 *
 * <p>The well-behaved tenant is a {@link WellBehavedPair}: two client processes streaming numbered,
 * checked frames from device A to device B over the shm connector. Each {@link Attack} is one step:
 * it launches (a tenant's move over the shm socket or a vhost-user socket, with real fds, against
 * devices on the pair's network), checks what the bus did about it, and keeps going while the harness
 * watches A's switch port until the stream has clearly advanced under it; then it ends and checks the
 * rest (counted drops, an unplug that finishes). The last step stops the stream: every frame A sent
 * arrived at B once, in order and intact, and the switch's counters for A and B say the same, with no
 * drop of any kind at either port.
 *
 * <p>The pair's rate (frames A put into the switch per second) is printed per phase with its ratio to
 * a baseline window measured before any attack. It is never asserted: tests do not assert wall-clock
 * speed. What is asserted is that the stream advances during each attack, within a generous deadline.
 *
 * <p>An attack whose expected outcome needs a fix that is not on main yet names its branch
 * ({@link Attack#needs()}) and is skipped, with a row in the table saying so; {@code -Dhostile.all=true}
 * runs those too (to see what today's code does, or to check a branch before it is merged).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostilePeersTest {
    static final boolean RUN_ALL = Boolean.getBoolean("hostile.all");
    static final Duration BASELINE = Duration.ofSeconds(2);
    /** The stream runs this long before the baseline window, so the JITs of all three JVMs are warm for it. */
    static final Duration WARM_UP = Duration.ofSeconds(3);
    /** Each attack is watched at least this long, so its rate means something. */
    static final Duration MIN_WINDOW = Duration.ofSeconds(1);
    /** ...and until A put this many more frames into the switch: the stream advanced under the attack. */
    static final long MIN_ADVANCE = 500;
    /** How long the stream may take to advance that far under an attack on a busy machine before it counts as stalled. */
    static final Duration STALL = Duration.ofSeconds(60);
    /** Bound on launching or ending one attack: past it, the harness reports where the bus is stuck. */
    static final Duration STEP_BOUND = Duration.ofSeconds(150);

    Lan lan;
    WellBehavedPair pair;
    final RateTable table = new RateTable();
    boolean printed;

    /** Every attack of issue 9, in the order they run. */
    static List<Attack> attacks() {
        return List.of(
                FdAttacks.shmMapsOnlySealedReadWriteMemfds(),
                FdAttacks.vhostMapsOnlyReadWriteFds(),
                SwitchAttacks.deafReceiver(),
                SwitchAttacks.wedgedDoorbell(),
                FdAttacks.shmRefusalsCloseTheirFds(),
                FdAttacks.vhostRefusalsCloseTheirFds(),
                LimitAttacks.fdsInPieces(),
                LimitAttacks.manyConnections(),
                LimitAttacks.silentConnections(),
                LimitAttacks.hugeRegion(),
                LimitAttacks.manyDevices(),
                StateAttacks.venetFaultDuringSave(),
                StateAttacks.faultedRingStopped(),
                StateAttacks.logBaseSwitching(),
                StateAttacks.widenedRestore(),
                SwitchAttacks.spoofing());
    }

    @BeforeAll
    void startThePair() throws Exception {
        lan = new Lan();
        pair = WellBehavedPair.start(lan);
        Lan.await("A's stream enters the switch", () -> {
            pair.checkAlive();
            return lan.framesFromA() > MIN_ADVANCE;
        });
        long t0 = System.nanoTime();
        Lan.await("the warm-up", WARM_UP.plusSeconds(60), () -> {
            pair.checkAlive();
            return System.nanoTime() - t0 >= WARM_UP.toNanos();
        });
        lan.settledSessions = lan.sessions();
    }

    @AfterAll
    void stopEverything() {
        try {
            if (!printed) System.out.println(table.render());
        } finally {
            if (pair != null) pair.close();
            if (lan != null) lan.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> theWellBehavedPairKeepsExchangingAndLosesNothingWhileHostileTenantsAttackTheBus() {
        return Stream.of(
                Stream.of(dynamicTest("baseline: the pair alone on the bus", () -> alone("baseline (no attack)"))),
                attacks().stream().filter(HostilePeersTest::selected).map(a -> dynamicTest(a.toString(), () -> underAttack(a))),
                Stream.of(dynamicTest("after the attacks: the pair alone again", () -> alone("after the attacks (no attack)"))),
                Stream.of(dynamicTest("the pair lost nothing: every frame A sent reached B once, in order and intact, and the switch agrees",
                        this::nothingLost)))
                .flatMap(s -> s);
    }

    /** {@code -Dhostile.only=4,6} runs the attacks of those points only. */
    static boolean selected(Attack a) {
        String only = System.getProperty("hostile.only", "");
        return only.isBlank() || List.of(only.split(",")).contains(a.point());
    }

    /** A window with no attack: the first is the baseline every ratio refers to. */
    void alone(String phase) {
        long f0 = lan.framesFromA(), t0 = System.nanoTime();
        Lan.await(phase, BASELINE.plusSeconds(60), () -> {
            pair.checkAlive();
            return System.nanoTime() - t0 >= BASELINE.toNanos();
        });
        table.alone(phase, lan.framesFromA() - f0, System.nanoTime() - t0);
    }

    void underAttack(Attack attack) throws Exception {
        String phase = "(" + attack.point() + ") " + attack.name();
        if (attack.needs() != null && !RUN_ALL) {
            table.skipped(phase, "skipped: needs branch '" + attack.needs() + "'");
            Assumptions.abort("needs the '" + attack.needs() + "' branch on main (run with -Dhostile.all=true to try it anyway)");
        }
        pair.checkAlive();
        long f0 = lan.framesFromA(), t0 = System.nanoTime();
        try {
            Attack.Underway underway = Lan.bounded("launching " + phase, STEP_BOUND, () -> attack.move().launch(lan));
            try {
                watch(phase, f0, t0);
            } finally {
                Lan.bounded("ending " + phase, STEP_BOUND, () -> {
                    underway.close();
                    return null;
                });
            }
        } catch (Throwable t) {
            table.window(phase, lan.framesFromA() - f0, System.nanoTime() - t0, "FAILED: " + t.getMessage().lines().findFirst().orElse(""));
            throw t;
        }
        table.window(phase, lan.framesFromA() - f0, System.nanoTime() - t0, attack.needs() == null ? "" : "(needs '" + attack.needs() + "', ran anyway)");
        pair.checkAlive();
    }

    /** Waits until the window is long enough and the stream advanced enough under the attack; fails if it stalled. */
    private void watch(String phase, long f0, long t0) {
        long deadline = System.nanoTime() + STALL.toNanos();
        while (true) {
            pair.checkAlive();
            long advanced = lan.framesFromA() - f0, elapsed = System.nanoTime() - t0;
            if (elapsed >= MIN_WINDOW.toNanos() && advanced >= MIN_ADVANCE) return;
            if (System.nanoTime() > deadline)
                throw new AssertionError("the well-behaved pair stalled under " + phase + ": A put " + advanced + " frames into the switch in "
                        + elapsed / 1_000_000 + " ms (wanted " + MIN_ADVANCE + ")");
            java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
        }
    }

    void nothingLost() throws Exception {
        WellBehavedPair.Totals t = pair.stop();
        System.out.println("The well-behaved pair's rate, before and during the attacks (frames A put into the switch):\n" + table.render()
                + "  sender:   " + t.senderLine() + "\n  receiver: " + t.receiverLine());
        printed = true;
        assertThat(t.sent()).as("frames A sent").isPositive();
        assertThat(t.received()).as("frames B received, each once, in order, intact").isEqualTo(t.sent());
        assertThat(t.acksTaken()).as("acks A took = acks B sent").isEqualTo(t.acksSent());
        long bytes = 0;
        for (long i = 0; i < t.sent(); i++) bytes += NetClientProcess.frameLength(i);
        assertThat(t.bytes()).as("bytes B received").isEqualTo(bytes);

        // The switch's counters, read while both processes still hold their devices.
        Lan.await("the switch's counters for A and B settle", () -> lan.stats(lan.a).rxFrames() == t.sent() && lan.stats(lan.b).txFrames() == t.sent()
                && lan.stats(lan.b).rxFrames() == t.acksSent() && lan.stats(lan.a).txFrames() == t.acksSent());
        PortStats pa = lan.stats(lan.a), pb = lan.stats(lan.b);
        System.out.println("  port A: " + pa + "\n  port B: " + pb);
        assertThat(pa.rxBytes()).as("bytes A put into the switch").isEqualTo(bytes);
        assertThat(pb.txBytes()).as("bytes the switch delivered to B").isEqualTo(bytes);
        assertThat(pa.drops()).as("drops at A's port").isEmpty();
        assertThat(pb.drops()).as("drops at B's port").isEmpty();
        pair.quit();
    }
}
