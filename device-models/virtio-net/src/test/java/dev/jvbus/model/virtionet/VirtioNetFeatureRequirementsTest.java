package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.FeatureRequirement;
import dev.jvbus.core.feature.FeatureWithdrawal;
import dev.jvbus.core.feature.VirtioFeatures;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * virtio 1.x 5.1.3.1, "Feature bit requirements", for every rule virtio-net declares on a feature it offers:
 * (a) an operator limit that takes away what a feature requires takes that feature out of the offer too,
 * and says which and why; (b) a driver that acks a feature without what it requires is refused at
 * FEATURES_OK, naming both, while the same feature with its requirement is accepted.
 */
class VirtioNetFeatureRequirementsTest {
    static final FeatureCatalog CATALOG = VirtioNetFeatures.CATALOG;
    final Container container = VirtioNetExchangeTest.newContainer();

    /** Every requirement of an offered feature, by its name (the parameterised tests' names). */
    static Stream<FeatureRequirement> rules() {
        return CATALOG.requirements().stream();
    }

    /** Each feature bit is declared once, as a constant of {@link VirtioNetFeatures}: the rules name those, offered or not. */
    @Test
    void everyBitARuleNamesIsOneDeclaredConstantAndNoBitIsDeclaredTwice() throws Exception {
        List<FeatureBit> declared = new java.util.ArrayList<>();
        for (java.lang.reflect.Field f : VirtioNetFeatures.class.getFields())
            if (f.getType() == FeatureBit.class && java.lang.reflect.Modifier.isStatic(f.getModifiers())) declared.add((FeatureBit) f.get(null));
        assertThat(declared.stream().map(FeatureBit::bit)).as("bits declared").doesNotHaveDuplicates();
        assertThat(declared.stream().map(FeatureBit::name)).as("names declared").doesNotHaveDuplicates();
        for (FeatureRequirement r : VirtioNetFeatures.REQUIREMENTS) {
            assertThat(declared).as("the feature of " + r).containsOnlyOnce(r.feature());
            for (FeatureBit b : r.anyOf()) assertThat(declared).as("what " + r + " requires").containsOnlyOnce(b);
        }
        List<String> notOffered = List.of("VIRTIO_NET_F_GUEST_UFO", "VIRTIO_NET_F_HOST_UFO", "VIRTIO_NET_F_CTRL_VLAN");
        assertThat(declared).extracting(FeatureBit::name).as("declared though never offered").containsAll(notOffered);
        assertThat(VirtioNetFeatures.OFFERED.bits()).extracting(FeatureBit::name).doesNotContainAnyElementsOf(notOffered);
    }

    @Test
    void everyRuleOfTheSpecForAnOfferedFeatureIsDeclared() {
        assertThat(rules().map(FeatureRequirement::toString)).containsExactlyInAnyOrder(
                "VIRTIO_NET_F_GUEST_TSO4 requires VIRTIO_NET_F_GUEST_CSUM",
                "VIRTIO_NET_F_GUEST_TSO6 requires VIRTIO_NET_F_GUEST_CSUM",
                "VIRTIO_NET_F_GUEST_ECN requires VIRTIO_NET_F_GUEST_TSO4 or VIRTIO_NET_F_GUEST_TSO6",
                "VIRTIO_NET_F_GUEST_USO4 requires VIRTIO_NET_F_GUEST_CSUM",
                "VIRTIO_NET_F_GUEST_USO6 requires VIRTIO_NET_F_GUEST_CSUM",
                "VIRTIO_NET_F_HOST_TSO4 requires VIRTIO_NET_F_CSUM",
                "VIRTIO_NET_F_HOST_TSO6 requires VIRTIO_NET_F_CSUM",
                "VIRTIO_NET_F_HOST_ECN requires VIRTIO_NET_F_HOST_TSO4 or VIRTIO_NET_F_HOST_TSO6",
                "VIRTIO_NET_F_HOST_USO requires VIRTIO_NET_F_CSUM",
                "VIRTIO_NET_F_CTRL_RX requires VIRTIO_NET_F_CTRL_VQ",
                "VIRTIO_NET_F_GUEST_ANNOUNCE requires VIRTIO_NET_F_CTRL_VQ",
                "VIRTIO_NET_F_MQ requires VIRTIO_NET_F_CTRL_VQ",
                "VIRTIO_NET_F_CTRL_MAC_ADDR requires VIRTIO_NET_F_CTRL_VQ",
                "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS requires VIRTIO_NET_F_CTRL_VQ",
                "VIRTIO_NET_F_CTRL_RX_EXTRA requires VIRTIO_NET_F_CTRL_RX");
    }

    // ---- (a) the offer ----

    @ParameterizedTest(name = "{0}")
    @MethodSource("rules")
    void aLimitThatTakesAwayWhatAFeatureRequiresWithdrawsTheFeatureAndSaysWhy(FeatureRequirement rule) {
        Device d = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of());
        assertThat(rule.feature().in(d.features().offered())).as("offered without a limit").isTrue();

        d.limitFeatures(~rule.anyOfMask());
        List<FeatureWithdrawal> withdrawn = d.withdrawnFeatures();

        assertThat(rule.feature().in(d.features().offered())).as(rule.feature() + " withdrawn from the offer").isFalse();
        assertThat(withdrawn).as("the limit's result names it and the requirement it lost")
                .contains(new FeatureWithdrawal(rule.feature(), rule));
        assertThat(d.features().withdrawnNames(CATALOG)).contains(rule.feature().name() + " (requires " + rule.requiredNames() + ")");
        assertThat(d.features().limitedNames(CATALOG)).as("the operator's own limit is what it named, nothing more")
                .containsExactlyInAnyOrderElementsOf(CATALOG.names(rule.anyOfMask()));
        assertThat(CATALOG.unmet(d.features().offered())).as("no offer breaks a requirement").isEmpty();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("rules")
    void aDeviceCreatedWithSuchALimitNeverOffersTheFeature(FeatureRequirement rule) {
        Device d = container.addDevice(VirtioNetModel.TYPE, ~rule.anyOfMask(), Map.of());
        assertThat(rule.feature().in(d.features().offered())).isFalse();
        try (Attachment a = d.attach("driver", DeviceObserver.NONE)) {
            a.writeStatus(ACKNOWLEDGE | DRIVER);
            assertThat(rule.feature().in(a.offeredFeatures())).as("the driver is not offered it either").isFalse();
        }
    }

    @Test
    void withdrawalsFollowTheChainAndOneAlternativeLeftKeepsTheFeature() {
        Device d = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of());
        d.limitFeatures(~VirtioNetFeatures.CTRL_VQ.mask());
        List<FeatureWithdrawal> w = d.withdrawnFeatures();
        assertThat(w.stream().map(x -> x.feature().name())).containsExactlyInAnyOrder(
                "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_CTRL_RX_EXTRA", "VIRTIO_NET_F_GUEST_ANNOUNCE", "VIRTIO_NET_F_MQ", "VIRTIO_NET_F_CTRL_MAC_ADDR",
                "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS");
        d.limitFeatures(~VirtioNetFeatures.GUEST_CSUM.mask());
        assertThat(d.withdrawnFeatures().stream().map(x -> x.feature().name()))
                .as("without GUEST_CSUM: the TSOs and USOs, and ECN after them").containsExactlyInAnyOrder(
                        "VIRTIO_NET_F_GUEST_TSO4", "VIRTIO_NET_F_GUEST_TSO6", "VIRTIO_NET_F_GUEST_USO4", "VIRTIO_NET_F_GUEST_USO6",
                        "VIRTIO_NET_F_GUEST_ECN");
        d.limitFeatures(~VirtioNetFeatures.HOST_TSO4.mask());
        assertThat(d.withdrawnFeatures()).as("HOST_ECN keeps HOST_TSO6").isEmpty();
        assertThat(VirtioNetFeatures.HOST_ECN.in(d.features().offered())).isTrue();
    }

    // ---- (b) FEATURES_OK ----

    @ParameterizedTest(name = "{0}")
    @MethodSource("rules")
    void aDriverThatAcksAFeatureWithoutWhatItRequiresIsRefusedAtFeaturesOkNamingBoth(FeatureRequirement rule) {
        Device d = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of());
        try (Attachment a = d.attach("driver", DeviceObserver.NONE)) {
            a.writeStatus(ACKNOWLEDGE | DRIVER);
            a.ackFeatures(VirtioFeatures.VERSION_1.mask() | rule.feature().mask());   // the feature alone: only this rule broken

            assertThatThrownBy(() -> a.addStatus(FEATURES_OK))
                    .isInstanceOf(FeatureNegotiationException.class)
                    .hasMessageContaining(rule.feature().toString())
                    .hasMessageContaining(String.join(" or ", rule.anyOf().stream().map(FeatureBit::toString).toList()));
            assertThat(d.status().has(FEATURES_OK)).as("FEATURES_OK stays clear").isFalse();
            assertThat(d.needsResetReason()).as("a refused ack faults nothing").isEmpty();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("rules")
    void theSameFeatureWithWhatItRequiresIsAccepted(FeatureRequirement rule) {
        Device d = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of());
        long ack = VirtioFeatures.VERSION_1.mask() | rule.feature().mask() | rule.anyOf().getFirst().mask();
        for (List<FeatureRequirement> unmet; !(unmet = CATALOG.unmet(ack)).isEmpty(); )
            ack |= unmet.getFirst().anyOf().getFirst().mask();   // and what the requirement requires in turn
        try (Attachment a = d.attach("driver", DeviceObserver.NONE)) {
            a.writeStatus(ACKNOWLEDGE | DRIVER);
            a.ackFeatures(ack);
            a.addStatus(FEATURES_OK);
            assertThat(d.status().has(FEATURES_OK)).isTrue();
            assertThat(d.features().negotiated()).isEqualTo(ack);
        }
    }
}
