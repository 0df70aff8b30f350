package dev.jvbus.model.venet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.ModelStateSchemas;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.core.state.StateFormatException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** venet's state is its own record, written with its type and version and read back strictly. */
class VenetStateTest {
    private static final ModelStateSchemas SCHEMAS = DeviceModels.discover(VenetStateTest.class.getClassLoader())::stateSchema;

    private static String saved() {
        Device d = Frames.container().addDevice("venet", -1, Map.of("network", "lan", "mac", "02:00:00:00:00:2a"));
        return StateCodec.encodeToString(d.save());
    }

    @Test
    void theStateIsWrittenWithItsTypeAndVersionAndRestoredIntoTheRecord() {
        String json = saved();
        assertThat(json).contains("\"model\":{\"type\":\"venet\",\"version\":1,\"mac\":\"02:00:00:00:00:2a\",\"linkUp\":false,"
                + "\"caps\":0,\"pendingLinkEvents\":[]}");
        DeviceState s = StateCodec.decode(json, SCHEMAS);
        assertThat(s.model()).isEqualTo(new VenetState("02:00:00:00:00:2a", false, 0, List.of()));
        Container target = Frames.container();
        Device restored = target.restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).isEqualTo(json);
    }

    @Test
    void aMissingFieldIsRefusedNamingItAndTheModel() {
        String missing = saved().replace("\"linkUp\":false,", "");
        assertThatThrownBy(() -> StateCodec.decode(missing, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: venet state version 1: missing field 'linkUp' in VenetState");
    }

    @Test
    void anUnknownFieldIsRefusedNamingItAndTheModel() {
        String unknown = saved().replace("\"linkUp\":false,", "\"linkUp\":false,\"speed\":1000,");
        assertThatThrownBy(() -> StateCodec.decode(unknown, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: venet state version 1: unknown field 'speed' in VenetState"
                        + " (it has: caps, linkUp, mac, pendingLinkEvents)");
    }

    @Test
    void valuesNoVenetDeviceCouldHaveSavedAreRefusedNamingTheField() {
        String json = saved();
        assertThatThrownBy(() -> StateCodec.decode(json.replace("\"02:00:00:00:00:2a\",\"linkUp\"", "\"02:00:00\",\"linkUp\""), SCHEMAS))
                .isInstanceOf(StateFormatException.class).hasMessageContaining("venet state version 1: ").hasMessageContaining("mac: not a MAC address");
        assertThatThrownBy(() -> StateCodec.decode(json.replace("\"caps\":0", "\"caps\":4096"), SCHEMAS))
                .isInstanceOf(StateFormatException.class).hasMessageContaining("caps 0x1000 are not venet's");
        String seventeen = "[" + "true,".repeat(16) + "false]";
        assertThatThrownBy(() -> StateCodec.decode(json.replace("\"pendingLinkEvents\":[]", "\"pendingLinkEvents\":" + seventeen), SCHEMAS))
                .isInstanceOf(StateFormatException.class).hasMessageContaining("pendingLinkEvents holds 17, a device holds at most 16");
        assertThatThrownBy(() -> StateCodec.decode(json.replace("\"linkUp\":false", "\"linkUp\":\"down\""), SCHEMAS))
                .isInstanceOf(StateFormatException.class).hasMessageContaining("venet state version 1: ");
    }
}
