package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static dev.jvbus.model.venet.VenetSwitchTest.fn;
import static dev.jvbus.model.venet.VenetSwitchTest.poll;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetworkInfo;
import dev.jvbus.net.Networks;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Networks belong to a container of one bus: two buses in one JVM, each with a container and a network
 * of the same name and devices with the same devids (so the same default MACs), never carry each
 * other's frames and learn into separate MAC tables.
 */
class TwoBusesShareNoNetworkTest {
    static final int FRAMES = 8;

    @Test
    void twoBusesWithEqualContainerAndNetworkNamesNeverExchangeTraffic() throws Exception {
        Bus bus1 = new Bus(DeviceModels.discover(getClass().getClassLoader()));
        Bus bus2 = new Bus(DeviceModels.discover(getClass().getClassLoader()));
        Container c1 = bus1.createContainer("tenant");
        Container c2 = bus2.createContainer("tenant");
        Device a1 = c1.addDevice("venet", -1, Map.of("network", "lan"));
        Device b1 = c1.addDevice("venet", -1, Map.of("network", "lan"));
        Device a2 = c2.addDevice("venet", -1, Map.of("network", "lan"));
        Device b2 = c2.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest ga1 = new VenetGuest(Options.flat()).bringUp(a1);
             VenetGuest gb1 = new VenetGuest(Options.flat()).bringUp(b1);
             VenetGuest ga2 = new VenetGuest(Options.flat()).bringUp(a2);
             VenetGuest gb2 = new VenetGuest(Options.flat()).bringUp(b2)) {
            assertThat(ga1.mac()).as("same container name and devid: same default MAC").isEqualTo(ga2.mac());
            Networks n1 = Networks.of(c1), n2 = Networks.of(c2);
            assertThat(n1).isNotSameAs(n2);
            assertThat(n1.require("lan").ports()).hasSize(2);
            assertThat(n2.require("lan").ports()).hasSize(2);

            // Bus 1 talks; bus 2's network sees nothing of it.
            for (int i = 0; i < FRAMES; i++) ga1.sendBlocking(frame(MacAddress.BROADCAST, ga1.mac(), 60, i));
            awaitTrue(() -> poll(gb1) >= FRAMES && fn(ga1).txFrames == FRAMES, "bus 1's broadcasts at B1");
            // Forwarding runs on the sender's thread: once A1's worker has sent them all, every delivery is done.
            assertThat(poll(ga2) + poll(gb2)).as("frames from bus 1 at bus 2's devices").isZero();
            NetworkInfo lan2 = n2.info("lan").orElseThrow();
            // Each table holds its own devices' assigned MACs (from hotplug on), each at its own port, and nothing else.
            assertThat(lan2.macTable()).as("bus 2 learned nothing from bus 1")
                    .allSatisfy(e -> assertThat(lan2.ports()).anySatisfy(p -> {
                        assertThat(p.id()).isEqualTo(e.portId());
                        assertThat(p.assignedMac()).contains(e.mac());
                    })).hasSize(2);
            assertThat(lan2.ports()).allSatisfy(p -> assertThat(p.stats().txFrames() + p.stats().rxFrames()).isZero());
            assertThat(n1.info("lan").orElseThrow().macTable()).hasSize(2)
                    .anySatisfy(e -> {
                        assertThat(e.mac()).isEqualTo(MacAddress.toString(ga1.mac()));
                        assertThat(e.portId()).isEqualTo(n1.devicePort("lan", a1.devid().unsigned()).orElseThrow().id());
                    });

            // Bus 2 talks; bus 1 gets nothing more.
            for (int i = 0; i < FRAMES; i++) ga2.sendBlocking(frame(MacAddress.BROADCAST, ga2.mac(), 60, 1000 + i));
            awaitTrue(() -> poll(gb2) >= FRAMES && fn(ga2).txFrames == FRAMES, "bus 2's broadcasts at B2");
            assertThat(gb2.received.stream().map(Frames::seq)).allSatisfy(s -> assertThat(s).isGreaterThanOrEqualTo(1000L));
            assertThat(poll(gb1)).as("B1 got bus 1's frames only").isEqualTo(FRAMES);
            assertThat(gb1.received.stream().map(Frames::seq)).allSatisfy(s -> assertThat(s).isLessThan(1000L));
            assertThat(poll(ga1)).as("frames from bus 2 at A1").isZero();
            assertThat(n1.devicePort("lan", b1.devid().unsigned()).orElseThrow().stats().txFrames()).isEqualTo(FRAMES);
            assertThat(n2.devicePort("lan", b2.devid().unsigned()).orElseThrow().stats().txFrames()).isEqualTo(FRAMES);
        } finally {
            bus1.destroyContainer("tenant");
            bus2.destroyContainer("tenant");
        }
    }
}
