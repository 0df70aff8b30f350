package dev.jvbus.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.DeviceModels;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** jvbus.models.withhold: a bus whose model offers less, as a bus of an older version would. */
class ModelOffersTest {
    private static final DeviceModels DISCOVERED = DeviceModels.discover();

    @Test
    void aWithheldFeatureIsNeitherOfferedNorKnownByTheModelAndEverythingElseStaysAsItWas() {
        DeviceModels narrowed = new ModelOffers(Map.of("virtio-net", List.of("VIRTIO_RING_F_EVENT_IDX", " VIRTIO_NET_F_MRG_RXBUF")))
                .narrow(DISCOVERED);
        DeviceModel before = DISCOVERED.model("virtio-net").orElseThrow(), after = narrowed.model("virtio-net").orElseThrow();
        assertThat(after.features().names(after.features().mask()))
                .doesNotContain("VIRTIO_RING_F_EVENT_IDX", "VIRTIO_NET_F_MRG_RXBUF")
                .containsAll(before.features().names(before.features().mask() & ~before.features().maskOf(
                        List.of("VIRTIO_RING_F_EVENT_IDX", "VIRTIO_NET_F_MRG_RXBUF"))));
        assertThat(after.config()).isSameAs(before.config());
        assertThat(after.virtioDeviceId()).isEqualTo(before.virtioDeviceId());
        assertThat(narrowed.model("venet").orElseThrow()).as("other models untouched").isSameAs(DISCOVERED.model("venet").orElseThrow());
    }

    @Test
    void withholdingAFeatureWithholdsWhatRequiresItAndTheNarrowedModelKeepsItsRequirements() {
        DeviceModel after = new ModelOffers(Map.of("virtio-net", List.of("VIRTIO_NET_F_CTRL_VQ", "VIRTIO_NET_F_CSUM")))
                .narrow(DISCOVERED).model("virtio-net").orElseThrow();
        assertThat(after.features().names(after.features().mask()))
                .as("nothing offered that needs the control queue or tx checksums (virtio 1.x 5.1.3.1)")
                .doesNotContain("VIRTIO_NET_F_CTRL_VQ", "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_CTRL_RX_EXTRA", "VIRTIO_NET_F_GUEST_ANNOUNCE",
                        "VIRTIO_NET_F_CTRL_MAC_ADDR", "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS",
                        "VIRTIO_NET_F_CSUM", "VIRTIO_NET_F_HOST_TSO4", "VIRTIO_NET_F_HOST_TSO6", "VIRTIO_NET_F_HOST_ECN", "VIRTIO_NET_F_HOST_USO")
                .contains("VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_NET_F_GUEST_TSO4", "VIRTIO_NET_F_MRG_RXBUF");
        assertThat(after.features().requirements()).as("the rules of the features that stay stay with them")
                .anyMatch(r -> r.feature().name().equals("VIRTIO_NET_F_GUEST_TSO4"));
    }

    @Test
    void aTypeOrFeatureTheBusDoesNotHaveStopsTheStartNamingIt() {
        assertThatThrownBy(() -> new ModelOffers(Map.of("virtio-blk", List.of("X"))).narrow(DISCOVERED))
                .hasMessageContaining("jvbus.models.withhold.virtio-blk").hasMessageContaining("virtio-net");
        assertThatThrownBy(() -> new ModelOffers(Map.of("virtio-net", List.of("EVENT_IDXX"))).narrow(DISCOVERED))
                .hasMessageContaining("jvbus.models.withhold.virtio-net").hasMessageContaining("EVENT_IDXX");
    }
}
