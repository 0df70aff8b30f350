package dev.jvbus.net;

import static dev.jvbus.net.L2SwitchTest.A;
import static dev.jvbus.net.L2SwitchTest.B;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.net.L2SwitchTest.Recorder;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The operator's view of a container's networks: create, list, delete, and snapshots of ports and MAC tables. */
class NetworksTest {
    private final Networks networks = Networks.RESOURCE.create("tenant");

    /** A device's port as a model describes it. */
    static final class DevicePort extends Recorder {
        final long devid;

        DevicePort(long devid) {
            super("tenant/" + devid + ":venet");
            this.devid = devid;
        }

        @Override public PortBackend describe() { return new PortBackend.Device(devid, "venet"); }
    }

    @Test
    void operatorCreatesListsAndDeletesNetworks() {
        networks.create("lan");
        networks.create("dmz");
        assertThat(networks.names()).containsExactly("dmz", "lan");
        assertThat(networks.list()).extracting(NetworkInfo::name).containsExactly("dmz", "lan");
        assertThat(networks.list()).allSatisfy(n -> assertThat(n.ports()).isEmpty());

        assertThatThrownBy(() -> networks.create("lan")).isInstanceOf(NetworkException.class)
                .hasMessageContaining("network 'lan' already exists in container 'tenant'");
        assertThatThrownBy(() -> networks.create("bad name")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("invalid network name 'bad name'");

        networks.delete("dmz");
        assertThat(networks.names()).containsExactly("lan");
        assertThatThrownBy(() -> networks.delete("dmz")).isInstanceOf(NetworkException.class)
                .hasMessageContaining("no network 'dmz' in container 'tenant'");
    }

    @Test
    void getOrCreateIsTheOnePlaceANetworkComesIntoBeingImplicitly() {
        L2Switch sw = networks.getOrCreate("lan");
        assertThat(networks.getOrCreate("lan")).isSameAs(sw);
        assertThat(networks.network("lan")).containsSame(sw);
        assertThat(networks.network("other")).isEmpty();
        assertThat(networks.names()).containsExactly("lan");
    }

    @Test
    void deletingANetworkWithPortsIsRefusedNamingThemAndWorksOnceTheyLeft() {
        L2Switch sw = networks.create("lan");
        SwitchPort dev = sw.join(new DevicePort(7), A);
        SwitchPort tap = sw.join(new Recorder("tap:jv0") {
            @Override public PortBackend describe() { return new PortBackend.Tap("jv0"); }
        });

        assertThatThrownBy(() -> networks.delete("lan")).isInstanceOf(NetworkException.class)
                .hasMessage("network 'lan' in container 'tenant' still has 2 ports: #1 venet device 7, #2 TAP jv0;"
                        + " remove those devices (or close those TAP ports) first");
        assertThat(networks.names()).containsExactly("lan");

        dev.leave();
        tap.leave();
        networks.delete("lan");
        assertThat(networks.names()).isEmpty();
        // A device that looked the switch up before the delete cannot join it after.
        assertThatThrownBy(() -> sw.join(new DevicePort(8), B)).isInstanceOf(NetworkException.class)
                .hasMessageContaining("network 'lan' was deleted");
    }

    @Test
    void snapshotNamesPortsTheirBackendsAssignedMacsCountersAndTheMacTable() {
        L2Switch sw = networks.create("lan");
        SwitchPort pa = sw.join(new DevicePort(1), A);
        SwitchPort pb = sw.join(new DevicePort(2));          // mac-spoof-check off: no assigned MAC
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = arena.allocate(60);
            MacAddress.write(f, 0, B);
            MacAddress.write(f, 6, A);
            pa.send(f, 0, 60);
        }

        NetworkInfo lan = networks.info("lan").orElseThrow();
        assertThat(lan.name()).isEqualTo("lan");
        assertThat(lan.ports()).containsExactly(
                new PortInfo(1, "tenant/1:venet", new PortBackend.Device(1, "venet"), Optional.of(MacAddress.toString(A)), pa.stats()),
                new PortInfo(2, "tenant/2:venet", new PortBackend.Device(2, "venet"), Optional.empty(), pb.stats()));
        assertThat(lan.ports().get(0).stats().rxFrames()).isEqualTo(1);
        assertThat(lan.ports().get(1).stats().txFrames()).isEqualTo(1);
        assertThat(lan.macTable()).containsExactly(new MacEntry(MacAddress.toString(A), 1, "tenant/1:venet"));
        assertThat(networks.devicePort("lan", 2)).map(PortInfo::id).contains(2);
        assertThat(networks.devicePort("lan", 3)).isEmpty();
        assertThat(networks.devicePort("wan", 1)).isEmpty();
        // A snapshot does not move with the switch.
        pb.leave();
        assertThat(lan.ports()).hasSize(2);
        assertThat(networks.info("lan").orElseThrow().ports()).hasSize(1);
    }
}
