package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bundled guest driver runs a virtio-net round trip in a real micro-VM: a virtio 1.x driver at CPL3
 * that puts its split rings in its own memory (DEVSHM), kicks through the doorbell port (KVM_IOEVENTFD),
 * and checks every echo a venet peer on the same switch sends back, header and bytes. The same device
 * model a QEMU guest drives over vhost-user, reached by hypercalls instead. Skipped, with the reason,
 * where /dev/kvm is missing or refused.
 */
class MicroVmVirtioNetRoundTripTest {
    static final long MEMORY = 4L << 20;
    static final Duration GENEROUS = Duration.ofSeconds(120);
    static final long PATIENCE = 60_000_000_000L;
    static final long GUEST_MAC = MacAddress.parse("02:00:00:00:18:01"), PEER_MAC = MacAddress.parse("02:00:00:00:18:02");

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
        box = Bus.withDiscoveredModels().createContainer("kvm-virtio-net");
        guestSide = box.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(GUEST_MAC)));
        peerSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(PEER_MAC)));
    }

    @AfterEach
    void tearDown() {
        if (peer != null) peer.close();
    }

    @Test
    void guestDrivesVirtioNetOverSplitRingsAndGetsEveryEchoBackInOrder() throws Exception {
        int frames = 300, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        VirtioNetRoundTrip.Report report = succeeded(runGuest(trip(frames, length, 16, false, 0)));

        assertThat(report.version()).isEqualTo(HypercallAbi.VERSION);
        assertThat(report.features()).as("acknowledged: VERSION_1 and MAC, no EVENT_IDX")
                .isEqualTo(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask());
        assertThat(report.mac()).as("config space mac").isEqualTo(GUEST_MAC);
        assertThat(List.of(report.sent(), report.received())).containsExactly((long) frames, (long) frames);
        assertThat(report.txCompletions()).as("tx completions may trail their echoes by the window").isBetween((long) frames - 16, (long) frames);
        peer.assertSawInOrder(frames, length, GUEST_MAC, PEER_MAC);
        assertThat(report.txDoorbells()).as("doorbells rung: NO_NOTIFY suppresses them while the tx worker is awake")
                .isBetween(1L, report.txKicks());
        assertThat(guestSide.holder()).as("released when the micro-VM closed").isEmpty();
    }

    @Test
    void fullSizedFramesWithEventIdxSuppressionGetThroughByteForByte() throws Exception {
        int frames = 200, length = 1514;
        peer = new EchoPeer(peerSide, -1, -1);
        VirtioNetRoundTrip.Report report = succeeded(runGuest(trip(frames, length, 8, true, 0)));

        assertThat(VirtioFeatures.EVENT_IDX.in(report.features())).as("EVENT_IDX acknowledged").isTrue();
        assertThat(report.received()).isEqualTo(frames);
        peer.assertSawInOrder(frames, length, GUEST_MAC, PEER_MAC);
        assertThat(report.txDoorbells()).as("avail_event suppression").isBetween(1L, report.txKicks());
    }

    /** One frame in flight: between echoes the guest arms its rings' signals and sleeps in WAIT; the device's call wakes it. */
    @Test
    void aGuestSleepingInWaitIsWokenThroughTheSplitRingsOwnSuppression() throws Exception {
        int frames = 100, length = 64;
        peer = new EchoPeer(peerSide, -1, -1);
        for (boolean eventIdx : new boolean[] {false, true}) {
            VirtioNetRoundTrip.Report report = succeeded(runGuest(trip(frames, length, 1, eventIdx, HypercallAbi.MAX_WAIT_MICROS)));
            assertThat(report.received()).as("event_idx " + eventIdx).isEqualTo(frames);
            assertThat(report.waits()).as("WAITs while echoes were under way, event_idx " + eventIdx).isPositive();
            assertThat(report.wakes()).as("WAITs a device signal ended (a lost wakeup sleeps the whole second), event_idx " + eventIdx)
                    .isPositive();
        }
    }

    @Test
    void aCorruptedEchoIsReportedAsTheFirstMismatchingByte() throws Exception {
        peer = new EchoPeer(peerSide, 5, 30);
        RunReport r = runGuest(trip(12, 100, 4, false, 0));

        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(RoundTripStage.ofExitCode(exited.code())).as(r.describe()).isEqualTo(RoundTripStage.RX_BYTE);
        byte expected = VenetRoundTrip.frameByte(5, 30);
        assertThat(exited.words()).as("[sequence, offset, expected, received]")
                .containsExactly(5L, 30L, (long) (expected & 0xff), (long) ((expected ^ EchoPeer.FLIP) & 0xff));
    }

    private VirtioNetRoundTrip trip(int frames, int length, int window, boolean eventIdx, long waitMicros) {
        return new VirtioNetRoundTrip(guestSide.devid().unsigned(), PEER_MAC, frames, length, window, eventIdx, PATIENCE, waitMicros);
    }

    private RunReport runGuest(VirtioNetRoundTrip trip) {
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
            return trip.run(vm, GENEROUS);
        }
    }

    private static VirtioNetRoundTrip.Report succeeded(RunReport r) {
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(exited.code()).as(r.describe() + "; failed stage " + RoundTripStage.ofExitCode(exited.code())).isZero();
        return VirtioNetRoundTrip.Report.of(exited.words());
    }
}
