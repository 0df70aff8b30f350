package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureObserver;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.virtionet.VirtioNetModel;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A micro-VM in the background is one of its container's exposures: listed with a session whose devices
 * show the features in force, stopped by closing it or by its container going away, and gone from the
 * list (its device released) once its guest has ended, whichever way it ended.
 */
class LiveMicroVmTest {
    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @Test
    void aRunningMicroVmIsListedWithItsSessionAndStopsWhenClosed() throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("live-vm");
        Device nic = box.addDevice(VirtioNetModel.TYPE);
        List<LiveMicroVm> ended = new CopyOnWriteArrayList<>();
        LiveMicroVm live = LiveMicroVm.startResponder(box, 4L << 20, responder(nic.devid().unsigned()), ended::add);

        await(() -> negotiated(box, nic) != 0, "the guest to negotiate");
        ExposureInfo info = box.exposures().infos().getFirst();
        assertThat(info.kind()).isEqualTo(LiveMicroVm.KIND);
        assertThat(info.state()).isEqualTo(ExposureState.CONNECTED);
        assertThat(info.sessions()).singleElement().satisfies(s -> {
            assertThat(s.pid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(VirtioFeatures.VERSION_1.in(s.negotiatedFeatures().get(nic.devid()))).isTrue();
        });
        assertThat(nic.holder()).isPresent();
        assertThat(live.counters().frames()).as("nothing sent to it yet").isZero();

        live.close();
        assertThat(box.exposures().list()).as("gone from the list").isEmpty();
        assertThat(nic.holder()).as("its device released").isEmpty();
        assertThat(ended).containsExactly(live);
        assertThat(live.outcome()).get().isInstanceOf(RunReport.TimedOut.class);
        live.close();   // twice: nothing more happens
        assertThat(ended).hasSize(1);
    }

    /**
     * Its container's observers hear of it the moment it is listed, and read its info then (the management app's
     * event stream does): it has its session already. It had none until it started, and info() failed.
     */
    @Test
    void anObserverToldOfTheNewMicroVmReadsItsInfoWithItsSession() throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("live-vm-seen");
        Device nic = box.addDevice(VirtioNetModel.TYPE);
        List<Object> seen = new CopyOnWriteArrayList<>();
        box.exposures().watch(new ExposureObserver() {
            @Override public void opened(Exposure e) {
                try {
                    seen.add(e.info());
                } catch (RuntimeException failed) {
                    seen.add(failed);
                }
            }
        });
        LiveMicroVm live = LiveMicroVm.startResponder(box, 4L << 20, responder(nic.devid().unsigned()), null);
        try {
            assertThat(seen).singleElement().isInstanceOfSatisfying(ExposureInfo.class, i -> {
                assertThat(i.state()).isEqualTo(ExposureState.CONNECTED);
                assertThat(i.sessions()).singleElement().satisfies(s -> assertThat(s.pid()).isEqualTo(ProcessHandle.current().pid()));
            });
        } finally {
            live.close();
        }
    }

    @Test
    void aGuestThatFailsLeavesTheListByItselfWithItsReason() throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("live-vm-bad");
        List<LiveMicroVm> ended = new CopyOnWriteArrayList<>();
        LiveMicroVm live = LiveMicroVm.startResponder(box, 4L << 20, responder(99), ended::add);

        await(() -> !ended.isEmpty(), "the guest to end");
        assertThat(box.exposures().list()).isEmpty();
        assertThat(live.outcome()).get().isInstanceOfSatisfying(RunReport.Exited.class,
                e -> assertThat(RoundTripStage.ofExitCode(e.code())).as("DEVOPEN of a devid that does not exist").isEqualTo(RoundTripStage.OPEN));
    }

    @Test
    void destroyingTheContainerStopsItsMicroVms() throws Exception {
        Bus bus = Bus.withDiscoveredModels();
        Container box = bus.createContainer("live-vm-gone");
        Device nic = box.addDevice(VirtioNetModel.TYPE);
        List<LiveMicroVm> ended = new CopyOnWriteArrayList<>();
        LiveMicroVm live = LiveMicroVm.startResponder(box, 4L << 20, responder(nic.devid().unsigned()), ended::add);
        await(() -> nic.holder().isPresent(), "the guest to open its device");

        bus.destroyContainer(box.name());
        assertThat(ended).containsExactly(live);
        assertThat(live.info().state()).isEqualTo(ExposureState.CLOSED);
    }

    private static Responder responder(long devid) throws Exception {
        return new Responder(devid, (Inet4Address) InetAddress.getByName("192.0.2.9"));
    }

    private static long negotiated(Container box, Device nic) {
        return box.exposures().infos().stream().flatMap(i -> i.sessions().stream())
                .mapToLong(s -> s.negotiatedFeatures().getOrDefault(nic.devid(), 0L)).findFirst().orElse(0L);
    }

    private static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            LockSupport.parkNanos(2_000_000);
        }
    }
}
