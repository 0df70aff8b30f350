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

/**
 * virtio-net's state is its own record (version 4: what the driver set on the control queue, the queue pairs
 * it has carrying traffic, where its delivery log and control record are), written with its type and version and
 * read back strictly; a version 1 file (before the control queue), a version 2 file (before multiqueue) and a
 * version 3 file (before the model-verb addresses) still restore.
 */
class VirtioNetStateTest {
    private final Bus bus = Bus.withDiscoveredModels();
    static final String MODEL_V4_PREFIX = "\"model\":{\"type\":\"virtio-net\",\"version\":4,";
    static final String NO_ADDRESSES = ",\"deliveryLogAddress\":0,\"controlRecordAddress\":0}";

    private String saved() {
        Device d = bus.createContainer("src").addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", "52:54:00:00:00:07"));
        return StateCodec.encodeToString(d.save());
    }

    /** The model object of a saved device state, as written. */
    private static String modelOf(String json) {
        int at = json.indexOf("\"model\":{");
        return json.substring(at, json.indexOf('}', at) + 1);
    }

    @Test
    void theStateIsWrittenWithItsTypeAndVersionAndRestoredIntoTheRecord() {
        String json = saved();
        assertThat(json).contains(MODEL_V4_PREFIX + "\"rxModeSet\":false,\"promiscuous\":true,");
        DeviceState s = StateCodec.decode(json, bus.models()::stateSchema);
        assertThat(s.model()).isInstanceOf(VirtioNetState.class);
        assertThat(((VirtioNetState) s.model()).rxModeSet()).isFalse();
        Device restored = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).isEqualTo(json);
    }

    @Test
    void aVersion1StateWrittenBeforeTheControlQueueStillRestoresAsTheDefaults() {
        String json = saved();
        String v1 = json.replace(modelOf(json), "\"model\":{\"type\":\"virtio-net\",\"version\":1}");
        DeviceState s = StateCodec.decode(v1, bus.models()::stateSchema);
        assertThat(s.model()).isEqualTo(VirtioNetState.AFTER_VERSION_1);
        Device restored = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).contains(MODEL_V4_PREFIX);
    }

    @Test
    void aVersion3StateWrittenBeforeTheModelVerbAddressesRestoresWithNone() {
        String json = saved();
        assertThat(json).contains(",\"queuePairs\":1" + NO_ADDRESSES);
        String v3 = json.replace(MODEL_V4_PREFIX, "\"model\":{\"type\":\"virtio-net\",\"version\":3,").replace(NO_ADDRESSES, "}");
        DeviceState s = StateCodec.decode(v3, bus.models()::stateSchema);
        assertThat(((VirtioNetState) s.model()).controlRecordAddress()).isZero();
        assertThat(((VirtioNetState) s.model()).deliveryLogAddress()).isZero();
        Device restored = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).isEqualTo(json);
        String withAddresses = json.replace(NO_ADDRESSES, ",\"deliveryLogAddress\":4096,\"controlRecordAddress\":8192}");
        DeviceState a = StateCodec.decode(withAddresses, bus.models()::stateSchema);
        assertThat(StateCodec.encodeToString(Bus.withDiscoveredModels().createContainer("dst").restoreDevice(a).save()))
                .as("carried on by the restored device").isEqualTo(withAddresses);
        String unaligned = json.replace(NO_ADDRESSES, ",\"deliveryLogAddress\":0,\"controlRecordAddress\":8193}");
        assertThatThrownBy(() -> StateCodec.decode(unaligned, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("controlRecordAddress 0x2001 must be 8-byte aligned");
    }

    @Test
    void aVersion2StateWrittenBeforeMultiqueueRestoresWithOnePair() {
        String json = saved();
        assertThat(json).contains(",\"queuePairs\":1" + NO_ADDRESSES);
        String v2 = json.replace(MODEL_V4_PREFIX, "\"model\":{\"type\":\"virtio-net\",\"version\":2,").replace(",\"queuePairs\":1" + NO_ADDRESSES, "}");
        DeviceState s = StateCodec.decode(v2, bus.models()::stateSchema);
        assertThat(((VirtioNetState) s.model()).queuePairs()).isEqualTo(1);
        assertThat(((VirtioNetState) s.model()).promiscuous()).isTrue();
        Device restored = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(s);
        assertThat(StateCodec.encodeToString(restored.save())).isEqualTo(json);
        String badPairs = json.replace(",\"queuePairs\":1,", ",\"queuePairs\":0,");
        assertThatThrownBy(() -> StateCodec.decode(badPairs, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("queuePairs must be in 1..32768: 0");
    }

    @Test
    void anUnknownFieldIsRefusedNamingItAndTheModel() {
        String json = saved();
        String unknown = json.replace(MODEL_V4_PREFIX, MODEL_V4_PREFIX + "\"speed\":1000,");
        assertThatThrownBy(() -> StateCodec.decode(unknown, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("device state version 2 is damaged: virtio-net state version 4: ")
                .hasMessageContaining("unknown field 'speed' in VirtioNetState");
        String v1WithField = json.replace(modelOf(json), "\"model\":{\"type\":\"virtio-net\",\"version\":1,\"promiscuous\":true}");
        assertThatThrownBy(() -> StateCodec.decode(v1WithField, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("unknown field 'promiscuous'");
    }

    @Test
    void badFilterAddressesOrOffloadsInAFileAreRefusedByName() {
        String json = saved();
        String groupAsUnicast = json.replace("\"unicast\":[]", "\"unicast\":[\"01:00:5e:00:00:01\"]");
        assertThatThrownBy(() -> StateCodec.decode(groupAsUnicast, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("unicast filter address 01:00:5e:00:00:01 is a group address");
        String notAnOffload = json.replace("\"guestOffloads\":0", "\"guestOffloads\":4");
        assertThatThrownBy(() -> StateCodec.decode(notAnOffload, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("guestOffloads 0x4 has bits that are no guest offload");
    }

    @Test
    void anotherModelsStateOrAMissingVersionIsRefusedNamingIt() {
        String json = saved();
        String venets = json.replace("{\"type\":\"virtio-net\",\"version\":4,", "{\"type\":\"venet\",\"version\":1,");
        assertThatThrownBy(() -> StateCodec.decode(venets, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: model state is \"venet\" version 1; this bus reads virtio-net state version 4 (and 3, 2, 1)");
        String noVersion = json.replace("{\"type\":\"virtio-net\",\"version\":4,", "{\"type\":\"virtio-net\",");
        assertThatThrownBy(() -> StateCodec.decode(noVersion, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'version' in the model state");
        String v5 = json.replace("{\"type\":\"virtio-net\",\"version\":4,", "{\"type\":\"virtio-net\",\"version\":5,");
        assertThatThrownBy(() -> StateCodec.decode(v5, bus.models()::stateSchema)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("this bus reads virtio-net state version 4 (and 3, 2, 1)");
    }
}
