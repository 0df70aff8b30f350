package dev.jvbus.core.feature;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.bus.IllegalStatusTransitionException;
import dev.jvbus.core.testing.EchoModel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class FeatureNegotiationTest {
    private final Container container = Bus.withDiscoveredModels().createContainer("c");
    private final FeatureCatalog catalog = new EchoModel().features();
    private final long upper = EchoModel.UPPERCASE.mask();
    private final long eventIdx = VirtioFeatures.EVENT_IDX.mask();
    private final long v1 = VirtioFeatures.VERSION_1.mask();

    @Test
    void offeredIsTheModelsBitsLimitedByTheOperator() {
        Device d = container.addDevice(EchoModel.TYPE, ~eventIdx);
        FeatureView v = d.features();
        assertThat(v.available()).isEqualTo(catalog.mask());
        assertThat(v.offered()).isEqualTo(catalog.mask() & ~eventIdx);
        assertThat(v.limitedNames(catalog)).containsExactly("VIRTIO_RING_F_EVENT_IDX");
        assertThat(v.offeredNames(catalog)).doesNotContain("VIRTIO_RING_F_EVENT_IDX").contains("VIRTIO_F_VERSION_1");
        assertThat(v.negotiated()).isZero();
    }

    @Test
    void aSubsetOfTheOfferIsAcceptedAndTakesEffect() throws Exception {
        Device d = container.addDevice(EchoModel.TYPE);
        Attachment a = d.attach("drv", DeviceObserver.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(upper | v1);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThat(d.features().negotiatedNames(catalog)).containsExactly("ECHO_F_UPPERCASE", "VIRTIO_F_VERSION_1");
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        // the model behaves by what was negotiated
        assertThat(new String(a.call(EchoModel.CALL_ECHO, "hi".getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8)).isEqualTo("HI");
    }

    @Test
    void ackingABitOutsideTheOfferFailsFeaturesOk() {
        Device d = container.addDevice(EchoModel.TYPE, ~eventIdx);
        Attachment a = d.attach("drv", DeviceObserver.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(v1 | eventIdx | (1L << 40));
        assertThatThrownBy(() -> a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK))
                .isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("FEATURES_OK refused")
                .hasMessageContaining("[VIRTIO_RING_F_EVENT_IDX, bit40]")
                .satisfies(e -> assertThat(((FeatureNegotiationException) e).outside()).isEqualTo(eventIdx | (1L << 40)));
        assertThat(d.status().has(FEATURES_OK)).isFalse();
        assertThat(d.status().bits()).isEqualTo(ACKNOWLEDGE | DRIVER);
        assertThat(d.features().negotiated()).isZero();

        // the driver may try again with a subset
        a.ackFeatures(v1);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThat(d.features().negotiated()).isEqualTo(v1);
    }

    @Test
    void featuresAreAckedOnlyBetweenDriverAndFeaturesOk() {
        Device d = container.addDevice(EchoModel.TYPE);
        Attachment a = d.attach("drv", DeviceObserver.NONE);
        assertThatThrownBy(() -> a.ackFeatures(v1)).isInstanceOf(IllegalStatusTransitionException.class);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThatThrownBy(() -> a.ackFeatures(v1)).isInstanceOf(IllegalStatusTransitionException.class)
                .hasMessageContaining("before FEATURES_OK");
    }

    @Test
    void aLimitedBitCannotBeNegotiatedAndResetForgetsTheNegotiation() {
        Device d = container.addDevice(EchoModel.TYPE);
        d.limitFeatures(~upper);
        Attachment a = d.attach("drv", DeviceObserver.NONE);
        assertThat(a.offeredFeatures() & upper).isZero();
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(a.offeredFeatures());
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThat(d.features().negotiated() & upper).isZero();
        a.reset();
        assertThat(d.features().negotiated()).isZero();
        assertThat(d.features().acked()).isZero();
        assertThat(d.features().limit()).isEqualTo(~upper);
    }

    @Test
    void imposingASavedSetNeedsNoDriverAndRespectsTheOffer() {
        FeatureNegotiation n = new FeatureNegotiation(catalog.mask());
        assertThat(n.impose(v1 | eventIdx)).isZero();
        assertThat(n.negotiated()).isEqualTo(v1 | eventIdx);
        assertThat(n.accepted()).isTrue();

        FeatureNegotiation narrower = new FeatureNegotiation(catalog.mask());
        narrower.setLimit(~eventIdx);
        assertThat(narrower.impose(v1 | eventIdx)).isEqualTo(eventIdx);
        assertThat(narrower.negotiated()).isZero();
    }

    @Test
    void namesAndNumbersTranslateBothWays() {
        assertThat(catalog.maskOf(List.of("VIRTIO_F_VERSION_1", " ECHO_F_UPPERCASE"))).isEqualTo(v1 | upper);
        assertThat(catalog.byBit(29)).contains(VirtioFeatures.EVENT_IDX);
        assertThat(catalog.names(v1 | 1L << 63)).containsExactly("VIRTIO_F_VERSION_1", "bit63");
        assertThatThrownBy(() -> catalog.maskOf(List.of("TURBO"))).hasMessageContaining("unknown feature 'TURBO'");
        assertThatThrownBy(() -> FeatureCatalog.of(EchoModel.UPPERCASE, new FeatureBit(0, "OTHER", "")))
                .hasMessageContaining("feature bit 0 named twice");
    }
}
