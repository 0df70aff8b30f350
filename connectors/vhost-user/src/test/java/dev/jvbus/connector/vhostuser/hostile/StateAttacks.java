package dev.jvbus.connector.vhostuser.hostile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import java.util.List;

/**
 * Attacks through state (points 5, 6 and 7): a guest fault while the operator saves, the dirty log
 * switched under running rings, and a state file that asks for more than the operator allows.
 */
final class StateAttacks {
    private StateAttacks() {}

    static Attack widenedRestore() {
        return Attack.now("7", "a state file that widens the operator's feature limit, or carries status bits no device can have, is refused by name and nothing of it joins the network", lan -> {
            Device source = lan.addNet("saved");
            DeviceState saved = source.save();           // a real virtio-net state, of a device on the pair's network
            lan.unplug(source, Lan.WAIT);
            long v1 = VirtioFeatures.VERSION_1.mask(), eventIdx = VirtioFeatures.EVENT_IDX.mask();
            int live = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK;
            int ports = lan.sw.ports().size(), devices = lan.container.devices().size();
            int devid = 0x7000_0000 | (int) (System.nanoTime() & 0xffff);

            // The file's own limit is wide open and it imposes EVENT_IDX, which this bus's operator took away.
            DeviceState wide = viaFile(new DeviceState(saved.type(), devid, live, -1L, v1 | eventIdx, saved.config(), List.of(),
                    saved.params(), saved.model()));
            assertThatThrownBy(() -> lan.container.restoreDevice(wide, ~eventIdx))
                    .isInstanceOf(FeatureNegotiationException.class).hasMessageContaining("[VIRTIO_RING_F_EVENT_IDX]");

            DeviceState impossible = viaFile(new DeviceState(saved.type(), devid + 1, 0x100, -1L, 0, saved.config(), List.of(),
                    saved.params(), saved.model()));
            assertThatThrownBy(() -> lan.container.restoreDevice(impossible, -1L))
                    .isInstanceOf(DeviceException.class).hasMessageContaining("saved status 0x100 is not one a device can be in");

            assertThat(lan.container.contains(new DevId(devid)) || lan.container.contains(new DevId(devid + 1))).isFalse();
            assertThat(lan.container.devices()).hasSize(devices);
            assertThat(lan.sw.ports()).as("ports on the pair's network").hasSize(ports);
            return Attack.Underway.DONE;
        });
    }

    /** A state as the operator would get it: written to a file and read back. */
    private static DeviceState viaFile(DeviceState s) {
        return StateCodec.decode(StateCodec.encode(s));
    }
}
