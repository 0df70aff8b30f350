package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.net.MacAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bundled guest driver runs a venet round trip in a real micro-VM: it opens a venet device, puts
 * its IOQ rings in its own memory (DEVSHM), negotiates capabilities, brings the link up, sends frames
 * through the device to a second venet device on the same switch, and checks every frame that peer
 * echoes back. The peer is driven from Java by venet's test-side driver and records what it saw.
 * Skipped, with the reason, where /dev/kvm is missing or refused.
 */
class MicroVmVenetRoundTripTest {
    static final long MEMORY = 4L << 20;
    static final Duration GENEROUS = Duration.ofSeconds(120);
    /** Ticks without progress before the guest gives up: some 20 s at 3 GHz, and the VMM's timeout stays above it. */
    static final long PATIENCE = 60_000_000_000L;
    static final long GUEST_MAC = MacAddress.parse("02:00:00:00:17:01"), PEER_MAC = MacAddress.parse("02:00:00:00:17:02");

    private Container box;
    private Device guestSide, peerSide;
    private EchoPeer peer;

    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @BeforeEach
    void setUp() {
        box = Bus.withDiscoveredModels().createContainer("kvm-venet");
        guestSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(GUEST_MAC)));
        peerSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(PEER_MAC)));
    }

    @AfterEach
    void tearDown() {
        if (peer != null) peer.close();
    }

    @Test
    void guestSendsFramesThroughVenetAndGetsEveryEchoBackInOrder() throws Exception {
        int frames = 300, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 16, false, PATIENCE, 0));

        VenetRoundTrip.Report report = succeeded(r);
        assertThat(report.version()).isEqualTo(HypercallAbi.VERSION);
        assertThat(report.grantedSg()).as("SG not asked for").isZero();
        assertThat(report.grantedEvents()).as("LINKSTATE granted").isEqualTo(1);
        assertThat(report.linkState()).as("the LINKSTATE event after LINKUP").isEqualTo(1);
        assertThat(report.mac()).as("MACQUERY").isEqualTo(GUEST_MAC);
        assertThat(List.of(report.sent(), report.received())).containsExactly((long) frames, (long) frames);
        // The guest reports once every echo is in; a tx completion may trail its echo (the device publishes
        // used tx buffers in batches), by at most the guest's window of 16 frames in flight.
        assertThat(report.txCompletions()).as("tx completions collected").isBetween((long) frames - 16, (long) frames);
        peer.assertSawInOrder(frames, length, GUEST_MAC, PEER_MAC);
        assertThat(report.txDoorbells()).as("doorbells rung (suppressed while the tx worker is awake)").isBetween(1L, report.txKicks());
        assertThat(guestSide.holder()).as("released when the micro-VM closed").isEmpty();
    }

    @Test
    void withScatterGatherGrantedTheGuestSendsFullSizedFramesAsVenetSgDescriptors() throws Exception {
        int frames = 200, length = 1514;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 8, true, PATIENCE, 0));

        VenetRoundTrip.Report report = succeeded(r);
        assertThat(report.grantedSg()).as("VENET_CAP_SG granted").isEqualTo(1);
        assertThat(report.linkState()).isEqualTo(1);
        assertThat(report.received()).isEqualTo(frames);
        // Had the device read the venet_sg header as a flat frame, the peer would have seen 48-byte frames.
        peer.assertSawInOrder(frames, length, GUEST_MAC, PEER_MAC);
    }

    /**
     * One frame in flight at a time, so the guest has nothing to do while each echo is under way: it arms its
     * shm-signals and sleeps in a WAIT hypercall of up to a second, and the device's signal on the rx ring's call
     * eventfd ends it. Run after the same exchange with a spinning guest; prints both for the record (HYPERCALLS.md).
     */
    @Test
    void aGuestSleepingInWaitIsWokenByTheDevicesSignalAndGetsEveryEcho() throws Exception {
        int frames = 200, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        RunReport spun = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 1, false, PATIENCE, 0));
        RunReport slept = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, 1, false, PATIENCE,
                HypercallAbi.MAX_WAIT_MICROS));

        assertThat(succeeded(spun).waits()).as("the spinning guest never waits").isZero();
        VenetRoundTrip.Report report = succeeded(slept);
        assertThat(report.received()).isEqualTo(frames);
        assertThat(report.waits()).as("WAITs while echoes were under way").isPositive();
        assertThat(report.wakes()).as("WAITs the device's signal ended (a lost wakeup would sleep the whole second)").isPositive();
        assertThat(slept.stats().hypercalls()).as("each WAIT is one exit").isGreaterThan(report.waits());
        System.out.printf("venet ping-pong through a micro-VM (64 B, one in flight): spinning guest %.1f us per round trip; "
                        + "guest sleeping in WAIT %.1f us per round trip (%d WAITs, %d woken by the device)%n",
                spun.stats().elapsed().toNanos() / 1000.0 / frames, slept.stats().elapsed().toNanos() / 1000.0 / frames,
                report.waits(), report.wakes());
    }

    @Test
    void aCorruptedEchoIsReportedAsTheFirstMismatchingByte() throws Exception {
        peer = new EchoPeer(peerSide, 7, 40);      // frame 7 comes back with byte 40 flipped
        RunReport r = runGuest(new VenetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, 20, 100, 4, false, PATIENCE, 0));

        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(RoundTripStage.ofExitCode(exited.code())).as(r.describe()).isEqualTo(RoundTripStage.RX_BYTE);
        byte expected = VenetRoundTrip.frameByte(7, 40);
        assertThat(exited.words()).as("[sequence, offset, expected, received]")
                .containsExactly(7L, 40L, (long) (expected & 0xff), (long) ((expected ^ EchoPeer.FLIP) & 0xff));
    }

    private RunReport runGuest(VenetRoundTrip trip) {
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
            return trip.run(vm, GENEROUS);
        }
    }

    private static VenetRoundTrip.Report succeeded(RunReport r) {
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(exited.code()).as(r.describe() + "; failed stage " + RoundTripStage.ofExitCode(exited.code())).isZero();
        return VenetRoundTrip.Report.of(exited.words());
    }

}
