package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.core.bus.DeviceStatus.NEEDS_RESET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.spi.DataPathRun;
import dev.jvbus.core.testing.EchoModel;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** Faults from the data path land on the run that found them, never on a later one, and never deadlock a pause. */
class DataPathRunTest {
    private final Device device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
    private final EchoModel.Function fn = EchoModel.CREATED.getLast();
    private final List<String> told = new CopyOnWriteArrayList<>();
    private final Attachment a = device.attach("drv", new DeviceObserver() {
        @Override public void needsReset(DevId devid, String reason) { told.add(reason); }
    });

    private DataPathRun start() {
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        return fn.lastStart.run();
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened: " + what);
            Thread.sleep(2);
        }
    }

    @Test
    void aFaultReportedByARunThatEndedIsIgnoredAndCountedWhileTheCurrentRunsIsActedOn() throws Exception {
        DataPathRun first = start();
        assertThat(first.isCurrent()).isTrue();
        a.reset();
        assertThat(first.isCurrent()).as("a reset ends the run").isFalse();
        DataPathRun second = start();
        assertThat(second.isCurrent()).isTrue();

        first.needsReset("queue 1: a fault of the first driver session, reported late");
        await(() -> device.lateFaultsIgnored() == 1, "the late fault is counted as ignored");
        assertThat(device.status().has(NEEDS_RESET)).as("the second session is not marked").isFalse();
        assertThat(told).isEmpty();

        second.needsReset("queue 0: the second session's own fault");
        await(() -> device.status().has(NEEDS_RESET), "the current run's fault marks the device");
        assertThat(device.needsResetReason()).hasValue("queue 0: the second session's own fault");
        await(() -> told.size() == 1, "the driver is told");
        assertThat(second.isCurrent()).as("NEEDS_RESET ends the run").isFalse();
        assertThat(device.lateFaultsIgnored()).isEqualTo(1);
    }

    @Test
    void aReportNeverBlocksItsCallerEvenWhileAControlThreadHoldsTheDevice() throws Exception {
        DataPathRun run = start();
        synchronized (device) {        // as a pause holds the device while it waits for the reporting worker
            Thread reporter = Thread.ofPlatform().start(() -> run.needsReset("queue 1: found while the device was being paused"));
            reporter.join(TimeUnit.SECONDS.toMillis(20));
            assertThat(reporter.isAlive()).as("the reporting thread returned at once").isFalse();
            assertThat(device.status().has(NEEDS_RESET)).isFalse();
        }
        await(() -> device.status().has(NEEDS_RESET), "the report lands once the device is free");
    }

    @Test
    void aPauseWhoseDataPathDoesNotStopWithinItsBoundFailsAndTheDeviceNeedsAReset() throws Exception {
        start();
        fn.failQuiesce = true;
        assertThatThrownBy(device::pause).isInstanceOf(DeviceException.class)
                .hasMessageContaining("pause failed").hasMessageContaining("did not park within its bound");
        assertThat(device.isPaused()).isFalse();
        assertThat(device.status().has(NEEDS_RESET)).isTrue();
        assertThat(device.needsResetReason()).get().asString().contains("did not park");
        assertThat(told).hasSize(1);
    }
}
