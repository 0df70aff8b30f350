package dev.jvbus.core.state;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.spi.DeviceModels;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class StateCodecTest {
    /** How this bus reads each model's state: the test-echo model is on the class path. */
    private static final ModelStateSchemas SCHEMAS = DeviceModels.discover()::stateSchema;

    private static DeviceState sample() {
        return new DeviceState(EchoModel.TYPE, 0xFFFF_FFFE, 0x0F, ~(1L << 29), (1L << 32) | (1L << 28),
                new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0},
                List.of(new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 65530, 65529, true, List.of(3, 7, 255)),
                        new QueueState(1, RingKind.IOQ, 128, false, 0x8000, 0x9000, 0, 5, 5, false, List.of())),
                Map.of("network", "lan0", "mac", "52:54:00:12:34:56"), new EchoModel.EchoState(42));
    }

    @Test
    void roundTripKeepsEveryField() {
        DeviceState s = sample();
        byte[] encoded = StateCodec.encode(s);
        assertThat(new String(encoded, StandardCharsets.UTF_8)).startsWith("{\"format\":\"jvbus.device-state\",\"version\":2,")
                .contains("\"model\":{\"type\":\"test-echo\",\"version\":1,\"calls\":42}");
        assertThat(StateCodec.decode(encoded, SCHEMAS)).isEqualTo(s);
    }

    /** Fuzz finding (FUZZING.md): a version beyond int made Jackson's JsonNodeException escape decode. */
    @Test
    void aVersionBeyondIntIsRefusedByName() {
        String json = StateCodec.encodeToString(sample()).replace("\"version\":2", "\"version\":99999999999");
        assertThatThrownBy(() -> StateCodec.decode(json, SCHEMAS))
                .isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 99999999999 is not one this jvbus understands (it reads version 2)");
    }

    @Test
    void aNewerVersionIsRefusedByName() {
        String json = StateCodec.encodeToString(sample()).replace("\"version\":2", "\"version\":3");
        assertThatThrownBy(() -> StateCodec.decode(json, SCHEMAS))
                .isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 3 is newer than this jvbus understands (it reads version 2); "
                        + "upgrade jvbus on this side before restoring");
    }

    @Test
    void damagedOrForeignInputIsRefusedClearly() {
        assertThatThrownBy(() -> StateCodec.decode("{not json", SCHEMAS)).hasMessageStartingWith("saved device state is not valid JSON");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"other\",\"version\":1}", SCHEMAS)).hasMessageStartingWith("not a jvbus device state");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"jvbus.device-state\",\"version\":\"1\"}", SCHEMAS)).hasMessageContaining("no integer \"version\"");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"jvbus.device-state\",\"version\":0,\"device\":{}}", SCHEMAS)).hasMessageContaining("too old");
    }

    @Test
    void anUnknownFieldInTheDeviceOrAQueueIsRefusedNamingIt() {
        String extra = StateCodec.encodeToString(sample()).replaceFirst("\"devid\":", "\"surprise\":1,\"devid\":");
        assertThatThrownBy(() -> StateCodec.decode(extra, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessageStartingWith("device state version 2 is damaged: unknown field 'surprise' in DeviceState (it has: ");
        String inQueue = StateCodec.encodeToString(sample()).replaceFirst("\"ready\":", "\"burst\":4,\"ready\":");
        assertThatThrownBy(() -> StateCodec.decode(inQueue, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessageStartingWith("device state version 2 is damaged: unknown field 'burst' in QueueState (it has: ");
    }

    @Test
    void aMissingFieldInTheDeviceOrAQueueIsRefusedNamingIt() {
        String missing = StateCodec.encodeToString(sample()).replaceFirst("\"status\":15,", "");
        assertThatThrownBy(() -> StateCodec.decode(missing, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'status' in DeviceState");
        String inQueue = StateCodec.encodeToString(sample()).replaceFirst("\"usedAddr\":12288,", "");
        assertThatThrownBy(() -> StateCodec.decode(inQueue, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'usedAddr' in QueueState");
        String noModel = StateCodec.encodeToString(sample()).replaceFirst(",\"model\":\\{[^}]*}", "");
        assertThatThrownBy(() -> StateCodec.decode(noModel, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'model' in DeviceState");
    }

    @Test
    void theModelsStateIsReadStrictlyNamingTheFieldAndTheModel() {
        String json = StateCodec.encodeToString(sample());
        String unknown = json.replace("\"calls\":42", "\"calls\":42,\"colour\":\"red\"");
        assertThatThrownBy(() -> StateCodec.decode(unknown, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: test-echo state version 1: unknown field 'colour' in EchoState (it has: calls)");
        String missing = json.replace(",\"calls\":42", "");
        assertThatThrownBy(() -> StateCodec.decode(missing, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: test-echo state version 1: missing field 'calls' in EchoState");
        String badValue = json.replace("\"calls\":42", "\"calls\":-1");
        assertThatThrownBy(() -> StateCodec.decode(badValue, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessageContaining("test-echo state version 1: ").hasMessageContaining("saved call count -1 is negative");
        String newer = json.replace("\"type\":\"test-echo\",\"version\":1", "\"type\":\"test-echo\",\"version\":2");
        assertThatThrownBy(() -> StateCodec.decode(newer, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: model state is \"test-echo\" version 2; this bus reads test-echo state version 1");
        String noVersion = json.replace("\"type\":\"test-echo\",\"version\":1,", "\"type\":\"test-echo\",");
        assertThatThrownBy(() -> StateCodec.decode(noVersion, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'version' in the model state");
        String noType = json.replace("\"type\":\"test-echo\",\"version\":1,", "\"version\":1,");
        assertThatThrownBy(() -> StateCodec.decode(noType, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is damaged: missing field 'type' in the model state");
    }

    @Test
    void aStateOfADeviceTypeThisBusHasNoModelForIsRefusedByName() {
        String json = StateCodec.encodeToString(sample()).replace("\"type\":\"test-echo\",\"devid\"", "\"type\":\"floppy\",\"devid\"");
        assertThatThrownBy(() -> StateCodec.decode(json, SCHEMAS)).isInstanceOf(StateFormatException.class)
                .hasMessage("device state of type 'floppy': this bus has no such device model to read its state");
    }

    /** Files a jvbus writing version 1 saved (bus-core/src/test/resources/state, from main at 67abf9f): refused, saying why. */
    @ParameterizedTest
    @ValueSource(strings = {"venet-v1.json", "virtio-net-v1.json"})
    void aVersionOneFileIsRefusedSayingWhichVersionItIsAndWhichAreRead(String file) throws Exception {
        byte[] v1;
        try (var in = StateCodecTest.class.getResourceAsStream("/state/" + file)) {
            v1 = in.readAllBytes();
        }
        assertThat(new String(v1, StandardCharsets.UTF_8)).contains("\"version\":1,").contains("\"model\":{");
        // any model: the version is read before anything else
        ModelStateSchemas any = type -> Optional.of(ModelStateSchema.NONE);
        assertThatThrownBy(() -> StateCodec.decode(v1, any)).isInstanceOf(StateFormatException.class)
                .hasMessageStartingWith("device state version 1 is too old for this jvbus (it reads version 2)")
                .hasMessageContaining("version 1 kept the model's state as untyped strings");
    }

    @Test
    void aLiveDeviceIsSavedPausedAndRestoredElsewhereWithoutRenegotiating() throws Exception {
        Device src = Bus.withDiscoveredModels().createContainer("src").addDevice(EchoModel.TYPE);
        Attachment a = src.attach("guest", DeviceObserver.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        long wanted = EchoModel.UPPERCASE.mask() | VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask();
        a.ackFeatures(wanted);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        a.writeConfig(4, new byte[] {9, 8, 7, 6});
        a.call(EchoModel.CALL_ECHO, new byte[] {'x'});
        EchoModel.Function srcFn = EchoModel.CREATED.getLast();
        srcFn.queues = List.of(new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 17, 15, true, List.of(4, 9)));

        assertThatThrownBy(src::save).isInstanceOf(DeviceException.class).hasMessageContaining("pause the device before saving");
        src.pause();
        byte[] wire = StateCodec.encode(src.save());

        // another bus, as on the migration target
        Bus target = Bus.withDiscoveredModels();
        Device dst = target.createContainer("dst").restoreDevice(StateCodec.decode(wire, SCHEMAS));
        EchoModel.Function dstFn = EchoModel.CREATED.getLast();

        assertThat(dst.devid()).isEqualTo(src.devid());
        assertThat(dst.status()).isEqualTo(src.status());
        assertThat(dst.features().negotiated()).isEqualTo(wanted);
        assertThat(dst.configSnapshot()).isEqualTo(src.configSnapshot());
        assertThat(dstFn.calls).isEqualTo(1);
        assertThat(dst.isPaused()).as("a restored device waits for its connector before running").isTrue();
        assertThat(dstFn.starts).isZero();
        assertThat(dst.save()).as("saving again before resume gives the same state").isEqualTo(StateCodec.decode(wire, SCHEMAS));

        // the connector re-attaches, shares memory and doorbells, and resumes: no renegotiation
        Attachment b = dst.attach("guest", DeviceObserver.NONE);
        try (EventFd kick = EventFd.create()) {
            b.setMemory(GuestMemory.empty());
            b.setDoorbells(0, kick, Notifier.NONE);
            dst.resume();
            assertThat(dstFn.starts).isEqualTo(1);
            assertThat(dstFn.lastStart.features()).isEqualTo(wanted);
            assertThat(dstFn.lastStart.queues()).singleElement().satisfies(q -> {
                assertThat(q.resume()).isEqualTo(srcFn.queues.getFirst());
                assertThat(q.config().descAddr()).isEqualTo(0x1000);
                assertThat(q.kick()).isSameAs(kick);
            });
            assertThat(b.call(EchoModel.CALL_ECHO, "ok".getBytes(StandardCharsets.UTF_8))).isEqualTo("OK".getBytes(StandardCharsets.UTF_8));
        }
    }

    @Test
    void aRestoredDeviceIsReadyToResumeOnlyOnceItsDriverGaveEveryQueueItsDoorbells() {
        Device src = Bus.withDiscoveredModels().createContainer("src").addDevice(EchoModel.TYPE);
        Attachment a = src.attach("guest", DeviceObserver.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(VirtioFeatures.VERSION_1.mask());
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        EchoModel.CREATED.getLast().queues = List.of(new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 3, 3, false, List.of()));
        assertThat(src.readyToResume()).as("not paused: nothing to wait for").isTrue();
        src.pause();
        assertThat(src.readyToResume()).as("paused with its driver still there").isTrue();
        byte[] wire = StateCodec.encode(src.save());

        Device dst = Bus.withDiscoveredModels().createContainer("dst").restoreDevice(StateCodec.decode(wire, SCHEMAS));
        assertThat(dst.readyToResume()).as("no driver yet").isFalse();
        Attachment b = dst.attach("guest", DeviceObserver.NONE);
        b.setMemory(GuestMemory.empty());
        assertThat(dst.readyToResume()).as("attached, but queue 0 has no doorbells").isFalse();
        try (EventFd kick = EventFd.create()) {
            b.setDoorbells(0, kick, Notifier.NONE);
            assertThat(dst.readyToResume()).isTrue();
            dst.resume();
            assertThat(EchoModel.CREATED.getLast().starts).isEqualTo(1);
        }
    }

    @Test
    void aQueueThatCannotBeSavedIsTheDevicesErrorNamedAsSuch() {
        Device d = Bus.withDiscoveredModels().createContainer("src").addDevice(EchoModel.TYPE);
        Attachment a = d.attach("guest", DeviceObserver.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        EchoModel.CREATED.getLast().failSave = true;
        d.pause();
        assertThatThrownBy(d::save).isInstanceOf(DeviceException.class)
                .hasMessage("device 1: queues cannot be saved: queue 1: publishUsed() before save (pushed, not published)");
    }

    @Test
    void restoreRefusesFeaturesTheTargetDoesNotOffer() {
        DeviceState s = new DeviceState(EchoModel.TYPE, 5, ACKNOWLEDGE | DRIVER | FEATURES_OK, ~VirtioFeatures.EVENT_IDX.mask(),
                VirtioFeatures.EVENT_IDX.mask(), new byte[8], List.of(), Map.of(), EchoModel.EchoState.ZERO);
        var c = Bus.withDiscoveredModels().createContainer("dst");
        assertThatThrownBy(() -> c.restoreDevice(s, ~VirtioFeatures.EVENT_IDX.mask())).isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("cannot impose saved features")
                .hasMessageContaining("features not offered: [VIRTIO_RING_F_EVENT_IDX]");
        assertThat(c.devices()).isEmpty();

        DeviceState wrongType = new DeviceState("floppy", 5, 0, -1, 0, new byte[8], List.of(), Map.of(), NoModelState.INSTANCE);
        assertThatThrownBy(() -> c.restoreDevice(wrongType)).isInstanceOf(BusException.class).hasMessageContaining("unknown device type 'floppy'");
    }
}
