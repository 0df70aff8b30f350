package dev.jvbus.app.store;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.FeatureView;
import dev.jvbus.net.Networks;
import java.util.HashMap;
import java.util.Map;
import org.springframework.stereotype.Component;

/**
 * Builds the bus described by a {@link TopologyDocument} and describes a bus as one: the two
 * directions of the topology store, kept side by side so they stay each other's inverse.
 */
@Component
public class TopologyRecorder {
    private final TopologyStore store;

    public TopologyRecorder(TopologyStore store) {
        this.store = store;
    }

    /** Saves what {@code bus} holds now. */
    public void record(Bus bus) {
        store.save(describe(bus));
    }

    public static TopologyDocument describe(Bus bus) {
        return TopologyDocument.of(bus.containers().stream().map(TopologyRecorder::describe).toList());
    }

    private static TopologyDocument.ContainerEntry describe(Container c) {
        return new TopologyDocument.ContainerEntry(c.name(), c.deviceLimit(), c.nextDevid(), Networks.of(c).names(),
                c.devices().stream().map(TopologyRecorder::describe).toList());
    }

    private static TopologyDocument.DeviceEntry describe(Device d) {
        FeatureView f = d.features();
        Map<String, String> params = new HashMap<>(d.params());
        // A generated MAC is part of what a guest knows: keep it, so a restart gives the same one.
        macOf(d).ifPresent(mac -> params.putIfAbsent("mac", mac));
        return new TopologyDocument.DeviceEntry(d.devid().unsigned(), d.type(), f.limitedNames(d.featureCatalog()), params);
    }

    /** The MAC in a device's config space, for models that have one. */
    public static java.util.Optional<String> macOf(Device d) {
        return d.model().config().field("mac").filter(f -> f.width() == 6).map(f -> {
            byte[] c = d.configSnapshot();
            StringBuilder mac = new StringBuilder();
            for (int i = 0; i < 6; i++) mac.append(i == 0 ? "" : ":").append(String.format("%02x", c[f.offset() + i]));
            return mac.toString();
        });
    }

    /** Builds {@code doc}'s containers, networks and devices (same devids) on {@code bus}. */
    public static void build(Bus bus, TopologyDocument doc) {
        for (TopologyDocument.ContainerEntry ce : doc.containers()) {
            Container c = bus.container(ce.name()).orElseGet(() -> bus.createContainer(ce.name()));
            c.limitDevices(ce.deviceLimit());
            Networks n = Networks.of(c);
            for (String net : ce.networks()) if (n.network(net).isEmpty()) n.create(net);
            for (TopologyDocument.DeviceEntry de : ce.devices()) {
                var model = bus.models().model(de.type()).orElseThrow(() -> new TopologyStore.StoreException(
                        "device " + de.devid() + " in container '" + ce.name() + "' is a " + de.type()
                                + ", a model this bus does not have (it has " + bus.models().types() + ")"));
                long denied = model.features().maskOf(de.deny());
                c.addDevice(new dev.jvbus.core.bus.DevId((int) de.devid()), de.type(), ~denied, de.parameters());
            }
            c.skipDevidsBelow(ce.nextDevid());
        }
    }

}
