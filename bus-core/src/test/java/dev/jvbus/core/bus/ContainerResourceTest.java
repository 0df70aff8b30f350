package dev.jvbus.core.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.spi.ContainerResource;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.testing.EchoModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Per-container resources: how a module keeps state per container with no static registry. */
class ContainerResourceTest {
    /** What a module would keep per container; records the order things happen to it. */
    static final class Thing implements AutoCloseable {
        final String container;
        final List<String> log;

        Thing(String container, List<String> log) {
            this.container = container;
            this.log = log;
            log.add("made for " + container);
        }

        @Override public void close() { log.add("closed for " + container); }
    }

    private final List<String> log = new ArrayList<>();
    private final ContainerResource<Thing> key = ContainerResource.of("things", Thing.class, c -> new Thing(c, log));

    @Test
    void aContainerAndItsDevicesShareOneResourceMadeOnFirstUse() {
        Container c = Bus.withDiscoveredModels().createContainer("a");
        DeviceContext d1 = addDevice(c), d2 = addDevice(c);
        assertThat(log).isEmpty();
        Thing t = c.resource(key);
        assertThat(t.container).isEqualTo("a");
        assertThat(d1.resource(key)).isSameAs(t);
        assertThat(d2.resource(key)).isSameAs(t);
        assertThat(log).containsExactly("made for a");
    }

    @Test
    void twoBusesWithEqualContainerNamesShareNothing() {
        Container c1 = Bus.withDiscoveredModels().createContainer("a");
        Container c2 = Bus.withDiscoveredModels().createContainer("a");
        assertThat(c1.resource(key)).isNotSameAs(c2.resource(key));
        assertThat(addDevice(c1).resource(key)).isSameAs(c1.resource(key));
        assertThat(addDevice(c2).resource(key)).isSameAs(c2.resource(key));
    }

    @Test
    void destroyingTheContainerClosesItsResourcesAfterItsDevicesAndRefusesNewOnes() {
        Bus bus = Bus.withDiscoveredModels();
        Container c = bus.createContainer("a");
        DeviceContext d = addDevice(c);
        c.resource(key);
        c.subscribe(e -> { if (e instanceof ContainerEvent.DeviceRemoved) log.add("device removed"); });
        bus.destroyContainer("a");
        assertThat(log).containsExactly("made for a", "device removed", "closed for a");
        assertThatThrownBy(() -> d.resource(key)).isInstanceOf(BusException.class)
                .hasMessageContaining("container 'a' was destroyed; its things are gone");
    }

    @Test
    void aDeviceMadeAloneHasResourcesOfItsOwn() {
        Device.create(new DevId(1), "a", new EchoModel(), -1L, Map.of());
        DeviceContext alone = EchoModel.CREATED.getLast().context;
        Container c = Bus.withDiscoveredModels().createContainer("a");
        assertThat(alone.resource(key)).isNotSameAs(c.resource(key));
    }

    /** Adds a device and returns the context its function was given. */
    private static DeviceContext addDevice(Container c) {
        c.addDevice(EchoModel.TYPE);
        return EchoModel.CREATED.getLast().context;
    }
}
