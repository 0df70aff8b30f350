package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.model.virtionet.VirtioNetModel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The bus tells a running micro-VM guest what happens in its container, through the event ring the guest
 * registered (BUSEVENTS) and a wake-up of its WAIT: a device hotplugged and unplugged beside it, and its
 * own device needing a reset after the guest broke a ring rule. Skipped where /dev/kvm is not usable.
 */
class MicroVmBusEventsTest {
    static final long PATIENCE = 60_000_000_000L;

    record Event(int kind, long devid, String detail) {}

    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @Test
    void aSleepingGuestHearsOfAHotplugOpensTheNewDeviceHearsOfItsUnplugAndOfItsOwnDevicesNeedsReset() throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("kvm-events");
        Device mine = box.addDevice(VirtioNetModel.TYPE);
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), 4L << 20)) {
            vm.writeParameters(mine.devid().unsigned(), PATIENCE);
            CompletableFuture<RunReport> run = new CompletableFuture<>();
            Thread.ofPlatform().daemon().name("events-guest").start(() -> run.complete(vm.run(GuestProgram.Mode.EVENTS, GuestLayout.PARAMS,
                    Duration.ofSeconds(120))));
            // The guest registers its ring before it opens the device: once it holds it, events reach it.
            await(() -> vm.openDevices() == 1 || run.isDone(), "the guest to open its device");
            assertThat(run).as("the guest is still running").isNotDone();
            await(() -> vm.waits() > 0 || run.isDone(), "the guest to sleep in WAIT");

            Device other = box.addDevice(VenetModel.TYPE);
            await(() -> other.holder().isPresent() || run.isDone(), "the guest to open the hot-added device");
            assertThat(vm.openDevices()).as("the guest holds both").isEqualTo(2);
            box.removeDevice(other.devid());   // unplugged under its driver: the guest is told, the VMM lets go of it

            RunReport r = run.get(150, TimeUnit.SECONDS);
            assertThat(r).as(r.describe()).isInstanceOf(RunReport.Exited.class);
            RunReport.Exited exited = (RunReport.Exited) r;
            assertThat(exited.code()).as(r.describe() + "; stage " + RoundTripStage.ofExitCode(exited.code())).isZero();
            List<Long> w = exited.words();
            assertThat(w.get(0)).as("ring entries: (4096 - 16) / 32").isEqualTo(127L);
            List<Event> events = new ArrayList<>();
            for (int i = 0; i < w.get(1); i++) events.add(new Event(w.get(2 + 3 * i).intValue(), w.get(3 + 3 * i), text(w.get(4 + 3 * i))));
            assertThat(events).as("DEVADD and DEVDROP of the other device, then NEEDS_RESET of the guest's own").containsExactly(
                    new Event(1, other.devid().unsigned(), "venet"),
                    new Event(2, other.devid().unsigned(), "venet"),
                    new Event(3, mine.devid().unsigned(), events.get(2).detail()));
            assertThat(events.get(2).detail()).as("the reason, cut to 8 bytes").isNotBlank();
            int tail = 2 + 3 * events.size();
            assertThat(w.get(tail)).as("lost").isZero();
            assertThat(w.get(tail + 2)).as("WAITs an event ended").isPositive();
            assertThat(w.get(tail + 3)).as("DEVOPEN of the hot-added device").isZero();
        }
        assertThat(mine.holder()).isEmpty();
    }

    private static String text(long eightBytes) {
        byte[] b = new byte[8];
        int n = 0;
        for (; n < 8 && ((eightBytes >>> (8 * n)) & 0xff) != 0; n++) b[n] = (byte) (eightBytes >>> (8 * n));
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    private static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            LockSupport.parkNanos(1_000_000);
        }
    }

}
