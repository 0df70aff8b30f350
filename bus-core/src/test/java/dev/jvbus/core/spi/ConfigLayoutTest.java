package dev.jvbus.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.testing.EchoModel;
import org.junit.jupiter.api.Test;

/** Which config bytes a driver may write: the offset and length are the driver's, so both are hostile. */
class ConfigLayoutTest {
    // id [0, 4) read-only, scratch [4, 8) driver-writable (as EchoModel)
    private final ConfigLayout layout = new EchoModel().config();

    @Test
    void anOffsetWhoseEndWrapsPastIntMaxIsNotWritableWhileRangesInsideWritableFieldsStayWritable() {
        assertThat(layout.driverMayWrite(Integer.MAX_VALUE - 1, 4)).isFalse();
        assertThat(layout.driverMayWrite(Integer.MAX_VALUE, Integer.MAX_VALUE)).isFalse();
        assertThat(layout.driverMayWrite(4, Integer.MAX_VALUE)).isFalse();

        assertThat(layout.driverMayWrite(4, 4)).isTrue();
        assertThat(layout.driverMayWrite(5, 2)).isTrue();
        assertThat(layout.driverMayWrite(3, 2)).as("reaches into the read-only id").isFalse();
        assertThat(layout.driverMayWrite(6, 4)).as("runs past the end").isFalse();
        assertThat(layout.driverMayWrite(4, 0)).as("nothing to write").isFalse();
        assertThat(layout.driverMayWrite(-1, 2)).isFalse();
        assertThat(layout.driverMayWrite(4, -1)).isFalse();
    }

    @Test
    void aDriverWriteAtAnOffsetNearIntMaxIsRefusedAsNotWritableAndChangesNothing() {
        Attachment driver = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE)
                .attach("drv", DeviceObserver.NONE);
        byte[] before = driver.readConfig(0, 8);
        assertThatThrownBy(() -> driver.writeConfig(Integer.MAX_VALUE - 1, new byte[] {1, 2, 3, 4}))
                .isInstanceOf(DeviceException.class).hasMessageContaining("not driver-writable");
        assertThat(driver.readConfig(0, 8)).isEqualTo(before);
    }
}
