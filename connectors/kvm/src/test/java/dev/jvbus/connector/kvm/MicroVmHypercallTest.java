package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.sys.Kvm;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bundled vbus guest driver boots in a real micro-VM (/dev/kvm) and talks to a real bus by
 * hypercalls. Skipped, with the reason, where /dev/kvm is missing or refused.
 */
class MicroVmHypercallTest {
    static final long MEMORY = 4L << 20;
    /** Generous: a loaded 2-core machine may take seconds to schedule the vCPU thread at all. */
    static final Duration GENEROUS = Duration.ofSeconds(60);

    private Bus bus;
    private Container mine, theirs;

    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @BeforeEach
    void setUp() {
        bus = Bus.withDiscoveredModels();
        mine = bus.createContainer("mine");
        theirs = bus.createContainer("theirs");
        for (int i = 0; i < 5; i++) theirs.addDevice(EchoModel.TYPE);
        mine.addDevice(EchoModel.TYPE);
        mine.addDevice(EchoModel.TYPE);
    }

    @Test
    void guestNegotiatesAndEnumeratesTheDevidsOfItsOwnContainer() {
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.ENUMERATE, 0, GENEROUS);
        }
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        RunReport.Exited exited = (RunReport.Exited) r;
        assertThat(exited.code()).as(r.describe()).isZero();
        List<Long> words = exited.words();
        assertThat(words.get(0)).as("negotiated version").isEqualTo(HypercallAbi.VERSION);
        assertThat(words.get(1)).as("device count").isEqualTo(mine.devices().size());
        List<Long> devids = new ArrayList<>();
        for (int i = 2; i + 1 < words.size(); i += 2) {
            devids.add(words.get(i));
            assertThat(typePrefix(words.get(i + 1))).isEqualTo(EchoModel.TYPE.substring(0, 8));
        }
        assertThat(devids).containsExactlyElementsOf(mine.devices().stream().map(d -> d.devid().unsigned()).toList());
    }

    @Test
    void badHypercallsGetErrorCodesAndTheGuestGoesOn() {
        long foreign = theirs.devices().getLast().devid().unsigned();   // devid 5: only "theirs" has it
        assertThat(mine.devices().stream().map(d -> d.devid().unsigned())).doesNotContain(foreign);
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.BAD_CALLS, foreign, GENEROUS);
            assertThat(vm.openDevices()).isZero();
        }
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        List<String> statuses = ((RunReport.Exited) r).words().stream().map(HypercallAbi::statusName).toList();
        assertThat(statuses).as(r.describe()).containsExactly(
                "NEGOTIATE_FIRST",          // ENUMERATE before NEGOTIATE
                "UNSUPPORTED_VERSION",      // versions 7..9
                "OK(1)",                    // a good NEGOTIATE after both: the guest went on
                "BAD_VERB",                 // verb 0x77
                "BAD_BLOCK",                // block at 1 GiB, outside 4 MiB of guest memory
                "BAD_BLOCK",                // block across the end of guest memory
                "BAD_BLOCK",                // a 1 TiB block
                "NO_SUCH_DEVICE",           // DEVOPEN of another container's devid
                "BAD_ARGUMENT",             // a WAIT far beyond MAX_WAIT_MICROS
                "OK(2)");                   // ENUMERATE works after all of that
        assertThat(r.stats().refused()).isEqualTo(8);
        for (Device d : theirs.devices()) assertThat(d.holder()).as("nobody attached to " + d.devid()).isEmpty();
    }

    @Test
    void aGuestThatSpinsForeverIsStoppedByItsTimeoutWithAClearReport() {
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.SPIN, 0, Duration.ofMillis(300));
        }
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.TimedOut.class);
        RunReport.TimedOut t = (RunReport.TimedOut) r;
        assertThat(t.vcpuStopped()).isTrue();
        assertThat(t.rip()).as("stopped inside the guest program").isBetween(GuestLayout.PROGRAM, GuestLayout.PROGRAM_END);
        assertThat(r.describe()).contains("did not finish within 300 ms", "stopped by immediate_exit + SIGPIPE at rip 0x");
    }

    @Test
    void aGuestThatRunsAnUndefinedInstructionIsStoppedWithAClearReport() {
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.UD2, 0, GENEROUS);
        }
        // At CPL3 with no IDT, #UD escalates to a triple fault: KVM reports a shutdown at once, no timeout needed.
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Faulted.class);
        assertThat(r.describe()).contains("KVM_EXIT_SHUTDOWN");
    }

    @Test
    void devicesTheGuestOpenedAreHeldUntilTheMicroVmCloses() {
        Device device = mine.devices().getFirst();
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.OPEN, device.devid().unsigned(), GENEROUS);
            assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
            assertThat(vm.openDevices()).isEqualTo(1);
            assertThat(device.holder()).as("attached by the guest's DEVOPEN").hasValueSatisfying(h -> assertThat(h).contains("micro-VM"));
        }
        assertThat(((RunReport.Exited) r).words().stream().map(HypercallAbi::statusName).toList())
                .containsExactly("OK(1)", "OK(0)", "BUSY", "NOT_OPEN");
        assertThat(device.holder()).as("released when the micro-VM closed").isEmpty();
    }

    @Test
    void queueKicksReachTheDoorbellEventfdWithoutAnExitToTheVmm() {
        Device device = mine.devices().getFirst();
        long kicks = 5_000;
        RunReport r;
        long kicked;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.DOORBELL, device.devid().unsigned() | kicks << 32, GENEROUS);
            assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
            kicked = vm.drainKicks(device.devid(), 1);
            assertThat(device.holder()).isPresent();
        }
        assertThat(((RunReport.Exited) r).words().stream().map(HypercallAbi::statusName).toList()).as(r.describe())
                .containsExactly("OK(1)", "NOT_OPEN", "OK(0)", "OK(0)", "BAD_BLOCK", "DEVICE_ERROR", "OK(1)");
        // An eventfd counts: every kick landed, and none of them was an exit (8 = the hypercalls above and EXIT).
        assertThat(kicked).isEqualTo(kicks);
        assertThat(r.stats().hypercalls()).isEqualTo(8);
        assertThat(r.stats().strayPortAccesses()).isZero();
        assertThat(device.holder()).as("released when the micro-VM closed").isEmpty();
        System.out.printf("KVM ioeventfd kick from CPL3 (no exit to the VMM): %.2f us per kick over %d kicks (run total %s)%n",
                r.stats().elapsed().toNanos() / 1000.0 / kicks, kicks, r.stats().elapsed());
    }

    @Test
    void devcallsReachTheDeviceWithTheFuncsAndPayloadsOfTheShmProtocol() {
        Device device = mine.devices().getFirst();
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.DEVCALL, device.devid().unsigned(), GENEROUS);
            assertThat(device.features().negotiated() & 1).as("ECHO_F_UPPERCASE negotiated, until the VM lets go").isEqualTo(1);
        }
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        List<Long> w = ((RunReport.Exited) r).words();
        long offered = w.get(3);
        assertThat(offered & 1).as("ECHO_F_UPPERCASE offered").isEqualTo(1);
        assertThat(w).as(r.describe()).hasSize(13);
        assertThat(List.of(w.get(0), w.get(1), w.get(2))).containsExactly(1L, 0L, 8L);   // NEGOTIATE, DEVOPEN, GET_FEATURES: 8 bytes
        assertThat(w.get(4)).as("SET_FEATURES").isZero();
        assertThat(w.get(5)).as("SET_STATUS replies 4 bytes").isEqualTo(4);
        assertThat(w.get(6)).as("status after FEATURES_OK").isEqualTo(11);
        assertThat(w.get(7)).as("echo length").isEqualTo(9);
        assertThat(typePrefix(w.get(8))).as("echoed in upper case: UPPERCASE was negotiated").isEqualTo("HELLO KV");
        assertThat(HypercallAbi.statusName(w.get(9))).as("bus call 0x50").isEqualTo("BAD_ARGUMENT");
        assertThat(HypercallAbi.statusName(w.get(10))).as("block outside memory").isEqualTo("BAD_BLOCK");
        assertThat(w.get(11)).as("a 9-byte reply into a 4-byte buffer: the full length comes back").isEqualTo(9);
        assertThat(HypercallAbi.statusName(w.get(12))).as("the model refused").isEqualTo("DEVICE_ERROR");
        assertThat(device.holder()).as("released when the micro-VM closed").isEmpty();
    }

    @Test
    void creatingRunningAndClosingMicroVmsLeavesNoFdOpen() throws Exception {
        bootEveryWay();   // warm-up: classes and jars the first run loads stay open for the JVM's life
        try (FdLedger fds = new FdLedger()) {
            fds.around("four micro-VMs: one exits, one times out, one faults, one holds a device with a doorbell", () -> {
                bootEveryWay();
                return null;
            });
        }
    }

    private void bootEveryWay() {
        long doorbellArg = mine.devices().getFirst().devid().unsigned() | 10L << 32;
        for (GuestProgram.Mode mode : new GuestProgram.Mode[] {GuestProgram.Mode.ENUMERATE, GuestProgram.Mode.SPIN, GuestProgram.Mode.UD2,
                GuestProgram.Mode.DOORBELL}) {
            try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
                RunReport r = vm.run(mode, mode == GuestProgram.Mode.DOORBELL ? doorbellArg : 0,
                        mode == GuestProgram.Mode.SPIN ? Duration.ofMillis(100) : GENEROUS);
                assertThat(r).as(r.describe()).isNotNull();
            }
        }
    }

    /**
     * Every hypercall of a burst is served and answered. Prints the round trip (an exit to the VMM and
     * back, decoding included) for the record; no assertion on time.
     */
    /**
     * Every doorbell kick wakes a host thread sleeping in epoll on the kick eventfd, whose answer the guest waits for:
     * had one kick been lost, the guest would spin on it until its patience ran out and report a stall.
     */
    @Test
    void everyDoorbellKickWakesAHostThreadThatAnswersTheGuest() {
        Device borrowed = mine.devices().getFirst();
        double nanos = KickWakeProbe.microVm(mine, borrowed, 2_000, GENEROUS);
        assertThat(nanos).as("time per kick, positive (its size is bench-kvm's business)").isPositive();
        assertThat(borrowed.holder()).as("released").isEmpty();
        assertThat(KickWakeProbe.hostBaseline(2_000)).as("the host-only exchange completes too").isPositive();
    }

    @Test
    void aBurstOfHypercallsIsServedOneForOne() {
        int n = 20_000;
        RunReport r;
        try (MicroVm vm = MicroVm.create(mine, GuestProgram.vbusGuest(), MEMORY)) {
            r = vm.run(GuestProgram.Mode.PING, n, GENEROUS);
        }
        assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
        assertThat(((RunReport.Exited) r).words()).containsExactly((long) HypercallAbi.VERSION);
        assertThat(r.stats().hypercalls()).isEqualTo(n + 1L);   // and the EXIT
        System.out.printf("KVM hypercall round trip (PIO exit from CPL3, NEGOTIATE decoded): %.1f us over %d calls%n",
                r.stats().elapsed().toNanos() / 1000.0 / (n + 1), n + 1);
    }

    private static String typePrefix(long word) {
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) b[i] = (byte) (word >>> (8 * i));
        return new String(b, StandardCharsets.UTF_8);
    }
}
