package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.testing.TestNetns;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The operator's TAP ports belong to the container's networks: attached into a real namespace the test
 * makes, listed with where they are, detached by port id (only TAP ports), refused on a network that has
 * them, and closed with their interfaces when the container goes away. Skipped, saying why, where
 * namespaces cannot be made.
 */
class NetworksTapPortsTest {
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();

    @Test
    void aTapPortIsListedDetachedByIdAndKeepsItsNetworkFromBeingDeleted() {
        Networks networks = Networks.RESOURCE.create("tenant");
        networks.create("lan");
        Networks.TapAttachment a = networks.attachTap("lan", "jvn0", ns.namespace());
        assertThat(a.ifname()).isEqualTo("jvn0");
        assertThat(networks.taps()).containsExactly(a);
        assertThat(networks.info("lan").orElseThrow().ports()).extracting(PortInfo::id).containsExactly(a.portId());
        assertThat(ns.ip("link", "show", "jvn0")).contains("UP");

        assertThatThrownBy(() -> networks.delete("lan")).isInstanceOf(NetworkException.class).hasMessageContaining("TAP jvn0");
        assertThatThrownBy(() -> networks.detachTap("lan", a.portId() + 1)).isInstanceOf(NetworkException.class)
                .hasMessageContaining("has no port #" + (a.portId() + 1));

        networks.detachTap("lan", a.portId());
        assertThat(networks.taps()).isEmpty();
        assertThat(ns.ipResult("link", "show", "jvn0").exit()).as("the interface went with the port").isNotZero();
        networks.delete("lan");
    }

    @Test
    void destroyingTheContainerClosesItsTapPortsAndRemovesTheirInterfaces() {
        try (Bus bus = new Bus(DeviceModels.of())) {
            Container c = bus.createContainer("tapped");
            Networks.of(c).create("lan");
            Networks.of(c).attachTap("lan", "jvn1", ns.namespace());
            assertThat(ns.ipResult("link", "show", "jvn1").exit()).isZero();
            bus.destroyContainer("tapped");
            assertThat(ns.ipResult("link", "show", "jvn1").exit()).as("closed with its container").isNotZero();
        }
    }
}
