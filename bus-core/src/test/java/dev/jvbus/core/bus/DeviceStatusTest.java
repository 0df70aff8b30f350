package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FAILED;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.core.bus.DeviceStatus.NEEDS_RESET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.testing.EchoModel;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class DeviceStatusTest {
    private Device device;
    private Attachment driver;
    private EchoModel.Function function;

    @BeforeEach
    void setUp() {
        device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
        function = EchoModel.CREATED.getLast();
        driver = device.attach("test-driver", DeviceObserver.NONE);
    }

    @Test
    void theSpecOrderReachesDriverOkAndStartsTheFunction() {
        driver.writeStatus(ACKNOWLEDGE);
        driver.writeStatus(ACKNOWLEDGE | DRIVER);
        driver.ackFeatures(driver.offeredFeatures());
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThat(function.starts).isZero();
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertThat(device.status().isLive()).isTrue();
        assertThat(function.starts).isEqualTo(1);
        assertThat(device.status().toString()).isEqualTo("ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK");
    }

    @Test
    void severalBitsInOneWriteAreTakenInOrder() {
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertThat(device.status().isLive()).isTrue();
    }

    @Test
    void outOfOrderBitsAreRefusedWithTheRule() {
        assertThatThrownBy(() -> driver.writeStatus(DRIVER))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("DRIVER before ACKNOWLEDGE");
        driver.writeStatus(ACKNOWLEDGE);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | FEATURES_OK))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("FEATURES_OK before DRIVER");
        driver.writeStatus(ACKNOWLEDGE | DRIVER);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | DRIVER | DRIVER_OK))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("DRIVER_OK before FEATURES_OK");
        assertThat(device.status().bits()).isEqualTo(ACKNOWLEDGE | DRIVER);
        assertThat(function.starts).isZero();
    }

    @Test
    void bitsAreClearedOnlyByReset() {
        driver.writeStatus(ACKNOWLEDGE | DRIVER);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("cleared only by a reset");
        driver.writeStatus(0);
        assertThat(device.status()).isEqualTo(DeviceStatus.RESET);
        assertThat(function.resets).isEqualTo(1);
    }

    @Test
    void theDriverCannotSetNeedsResetOrUnknownBits() {
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | NEEDS_RESET))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("set by the device");
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | 0x10))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("unknown status bits 0x10");
    }

    @Test
    void failedIsAllowedAnyTimeAndThenOnlyResetHelps() {
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        driver.writeStatus(device.status().bits() | FAILED);
        assertThat(device.status().has(FAILED)).isTrue();
        assertThat(device.status().isLive()).isFalse();
        assertThat(function.resets).isEqualTo(1); // data path stopped
        driver.writeStatus(0);
        driver.writeStatus(ACKNOWLEDGE);
        assertThat(device.status().bits()).isEqualTo(ACKNOWLEDGE);
    }

    @Test
    void failedBesideDriverOkDoesNotStartADataPathTheDriverGaveUpOn() {
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED))
                .isInstanceOf(IllegalStatusTransitionException.class).hasMessageContaining("gave up (FAILED) in this write");
        assertThat(function.starts).as("no data path started").isZero();
        assertThat(device.status().bits()).isEqualTo(ACKNOWLEDGE | DRIVER | FEATURES_OK | FAILED);
        driver.writeStatus(0);
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertThat(function.starts).isEqualTo(1);
    }

    @Test
    void needsResetStopsTheDeviceAndTellsTheDriver() {
        var told = new java.util.concurrent.atomic.AtomicReference<String>();
        driver.close();
        driver = device.attach("observed", new DeviceObserver() {
            @Override public void needsReset(DevId devid, String reason) { told.set(devid + ": " + reason); }
        });
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        int resetsBefore = function.resets;
        function.context.needsReset("queue 1: descriptor chain loops");

        assertThat(device.status().bits()).isEqualTo(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET);
        assertThat(told.get()).isEqualTo("1: queue 1: descriptor chain loops");
        assertThat(function.resets).isEqualTo(resetsBefore + 1);
        assertThat(device.needsResetReason()).contains("queue 1: descriptor chain loops");
        driver.writeStatus(device.status().bits());   // writing back what it reads (NEEDS_RESET included) is harmless
        assertThat(device.status().has(NEEDS_RESET)).isTrue();
        assertThatCode(() -> driver.writeStatus(device.status().bits() & ~NEEDS_RESET))
                .as("dropping NEEDS_RESET from the write does not clear it").doesNotThrowAnyException();
        assertThat(device.status().has(NEEDS_RESET)).isTrue();
        driver.writeStatus(0);
        assertThat(device.status()).isEqualTo(DeviceStatus.RESET);
        assertThat(device.needsResetReason()).isEmpty();
    }

    @Test
    void aFunctionThatCannotStartLeavesTheDeviceNeedingReset() {
        function.failStart = true;
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK))
                .isInstanceOf(DeviceException.class).hasMessageContaining("DRIVER_OK refused: told to fail");
        assertThat(device.status().has(NEEDS_RESET)).isTrue();
        assertThat(device.status().has(DRIVER_OK)).isFalse();
    }

    @Test
    void oneDriverAtATimeAndClosingResets() {
        assertThatThrownBy(() -> device.attach("second", DeviceObserver.NONE))
                .isInstanceOf(DeviceBusyException.class).hasMessageContaining("already open by test-driver");
        driver.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        driver.close();
        assertThat(device.status()).isEqualTo(DeviceStatus.RESET);
        assertThatThrownBy(() -> driver.writeStatus(ACKNOWLEDGE)).hasMessageContaining("not attached");
        Attachment second = device.attach("second", DeviceObserver.NONE);
        second.writeStatus(ACKNOWLEDGE);
        assertThat(device.holder()).contains("second");
    }

    @Test
    void configWritesAreLimitedToDriverWritableFields() {
        driver.writeConfig(4, new byte[] {1, 2, 3, 4});
        assertThat(driver.readConfig(4, 4)).containsExactly(1, 2, 3, 4);
        assertThatThrownBy(() -> driver.writeConfig(0, new byte[] {9})).hasMessageContaining("not driver-writable");
        assertThatThrownBy(() -> driver.readConfig(6, 4)).hasMessageContaining("outside 8-byte space");
    }
}
