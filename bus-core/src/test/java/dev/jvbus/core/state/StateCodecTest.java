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
import dev.jvbus.core.signal.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.EchoModel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class StateCodecTest {

    private static DeviceState sample() {
        return new DeviceState("virtio-net", 0xFFFF_FFFE, 0x0F, ~(1L << 29), (1L << 32) | (1L << 28),
                new byte[] {0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0},
                List.of(new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 65530, 65529, true, List.of(3, 7, 255)),
                        new QueueState(1, RingKind.IOQ, 128, false, 0x8000, 0x9000, 0, 5, 5, false, List.of())),
                Map.of("network", "lan0", "mac", "52:54:00:12:34:56"), Map.of("link", "up"));
    }

    @Test
    void roundTripKeepsEveryField() {
        DeviceState s = sample();
        byte[] encoded = StateCodec.encode(s);
        assertThat(new String(encoded, StandardCharsets.UTF_8)).startsWith("{\"format\":\"jvbus.device-state\",\"version\":1,");
        assertThat(StateCodec.decode(encoded)).isEqualTo(s);
    }

    @Test
    void aNewerVersionIsRefusedByName() {
        String json = StateCodec.encodeToString(sample()).replace("\"version\":1", "\"version\":2");
        assertThatThrownBy(() -> StateCodec.decode(json))
                .isInstanceOf(StateFormatException.class)
                .hasMessage("device state version 2 is newer than this jvbus understands (it reads 1..1); "
                        + "upgrade jvbus on this side before restoring");
    }

    @Test
    void damagedOrForeignInputIsRefusedClearly() {
        assertThatThrownBy(() -> StateCodec.decode("{not json")).hasMessageStartingWith("saved device state is not valid JSON");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"other\",\"version\":1}")).hasMessageStartingWith("not a jvbus device state");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"jvbus.device-state\",\"version\":\"1\"}")).hasMessageContaining("no integer \"version\"");
        assertThatThrownBy(() -> StateCodec.decode("{\"format\":\"jvbus.device-state\",\"version\":0,\"device\":{}}")).hasMessageContaining("too old");
        String extra = StateCodec.encodeToString(sample()).replace("\"type\":", "\"surprise\":1,\"type\":");
        assertThatThrownBy(() -> StateCodec.decode(extra)).isInstanceOf(StateFormatException.class).hasMessageContaining("damaged");
        String missing = StateCodec.encodeToString(sample()).replaceFirst("\"status\":15,", "");
        assertThatThrownBy(() -> StateCodec.decode(missing)).isInstanceOf(StateFormatException.class).hasMessageContaining("damaged");
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
        Device dst = target.createContainer("dst").restoreDevice(StateCodec.decode(wire));
        EchoModel.Function dstFn = EchoModel.CREATED.getLast();

        assertThat(dst.devid()).isEqualTo(src.devid());
        assertThat(dst.status()).isEqualTo(src.status());
        assertThat(dst.features().negotiated()).isEqualTo(wanted);
        assertThat(dst.configSnapshot()).isEqualTo(src.configSnapshot());
        assertThat(dstFn.calls).isEqualTo(1);
        assertThat(dst.isPaused()).as("a restored device waits for its connector before running").isTrue();
        assertThat(dstFn.starts).isZero();
        assertThat(dst.save()).as("saving again before resume gives the same state").isEqualTo(StateCodec.decode(wire));

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
                VirtioFeatures.EVENT_IDX.mask(), new byte[8], List.of(), Map.of(), Map.of());
        var c = Bus.withDiscoveredModels().createContainer("dst");
        assertThatThrownBy(() -> c.restoreDevice(s, ~VirtioFeatures.EVENT_IDX.mask())).isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("cannot impose saved features")
                .hasMessageContaining("features not offered: [VIRTIO_RING_F_EVENT_IDX]");
        assertThat(c.devices()).isEmpty();

        DeviceState wrongType = new DeviceState("floppy", 5, 0, -1, 0, new byte[8], List.of(), Map.of(), Map.of());
        assertThatThrownBy(() -> c.restoreDevice(wrongType)).isInstanceOf(BusException.class).hasMessageContaining("unknown device type 'floppy'");
    }
}
