package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.core.state.StateFormatException;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** virtio-net's state is its own (empty) record, written with its type and version and read back strictly. */
class VirtioNetStateTest {
    private final Bus bus = Bus.withDiscoveredModels();

    private String saved() {
        Device d = bus.createContainer("src").addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", "52:54:00:00:00:07"));
        return StateCodec.encodeToString(d.save());
    }

    @Test
    void theStateIsWrittenWithItsTypeAndVersionAndRestoredIntoTheRecord() {
        String json = saved();
        assertThat(json).contains("\"model\":{\"type\":\"virtio-net\",\"version\":1}");
        DeviceState s = StateCodec.decode(json, bus.models()::stateSchema);
        assertThat(s.model()).isEqualTo(new VirtioNetState());
        Device restored = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).isEqualTo(json);
    }

    @Test
    void anUnknownFieldIsRefusedNamingItAndTheModel() {
        String unknown = saved().replace("\"version\":1}", "\"version\":1,\"speed\":1000}");
        assertThatThrownBy(() -> StateCodec.decode(unknown, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: virtio-net state version 1: unknown field 'speed' in VirtioNetState"
                        + " (it has no fields)");
    }

    @Test
    void anotherModelsStateOrAMissingVersionIsRefusedNamingIt() {
        String json = saved();
        String venets = json.replace("{\"type\":\"virtio-net\",\"version\":1}", "{\"type\":\"venet\",\"version\":1}");
        assertThatThrownBy(() -> StateCodec.decode(venets, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: model state is \"venet\" version 1; this bus reads virtio-net state version 1");
        String noVersion = json.replace("{\"type\":\"virtio-net\",\"version\":1}", "{\"type\":\"virtio-net\"}");
        assertThatThrownBy(() -> StateCodec.decode(noVersion, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'version' in the model state");
    }
}
