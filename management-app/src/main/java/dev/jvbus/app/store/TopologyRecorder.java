package dev.jvbus.app.store;

import dev.jvbus.app.RuntimeDir;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.feature.FeatureView;
import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import java.io.PrintStream;
import java.util.List;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.springframework.stereotype.Component;

/**
 * Builds the bus described by a {@link TopologyDocument} and describes a bus as one: the two
 * directions of the topology store, kept side by side so they stay each other's inverse.
 */
@Component
public class TopologyRecorder {
    private final TopologyStore store;
    private final Path runtimeDir;

    public TopologyRecorder(TopologyStore store, RuntimeDir runtimeDir) {
        this.store = store;
        this.runtimeDir = runtimeDir.path();
    }

    /** Saves what {@code bus} holds now. */
    public void record(Bus bus) {
        store.save(describe(bus, runtimeDir));
    }

    /** {@code bus} as a document; sockets in {@code runtimeDir} are kept by their bare name. */
    public static TopologyDocument describe(Bus bus, Path runtimeDir) {
        return TopologyDocument.of(bus.nextExposureId(), bus.containers().stream().map(c -> describe(c, runtimeDir)).toList());
    }

    private static TopologyDocument.ContainerEntry describe(Container c, Path runtimeDir) {
        Networks n = Networks.of(c);
        List<Networks.TapAttachment> taps = n.taps();
        List<TopologyDocument.NetworkEntry> networks = n.names().stream().map(name -> new TopologyDocument.NetworkEntry(name,
                taps.stream().filter(t -> t.network().equals(name))
                        .map(t -> new TopologyDocument.PortEntry(namespaceName(t.namespace()), t.ifname())).toList())).toList();
        return new TopologyDocument.ContainerEntry(c.name(), c.deviceLimit(), c.nextDevid(), networks,
                c.devices().stream().map(TopologyRecorder::describe).toList(),
                c.exposures().infos().stream().flatMap(i -> describe(i, runtimeDir).stream()).toList());
    }

    /**
     * An exposure as the store keeps it. One of a kind the management plane does not open (another
     * connector's) is not kept: the store could not open it again.
     */
    private static Optional<TopologyDocument.ExposureEntry> describe(ExposureInfo i, Path runtimeDir) {
        return ExposureKind.byListed(i.kind()).map(k -> new TopologyDocument.ExposureEntry(i.id(), k.connector(),
                i.devid().map(DevId::unsigned).orElse(null), k.mode(), storedPath(i.socket(), runtimeDir)));
    }

    /** A socket in the runtime directory by its bare name (so it follows the directory), any other by its absolute path. */
    static String storedPath(Path socket, Path runtimeDir) {
        Path abs = socket.toAbsolutePath().normalize();
        Path dir = abs.getParent();
        boolean inRuntimeDir = dir != null && (dir.equals(runtimeDir.toAbsolutePath().normalize()) || sameDirectory(dir, runtimeDir));
        return inRuntimeDir ? abs.getFileName().toString() : abs.toString();
    }

    private static boolean sameDirectory(Path a, Path b) {
        try {
            return Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;   // one of them is gone: not the same
        }
    }

    private static TopologyDocument.DeviceEntry describe(Device d) {
        FeatureView f = d.features();
        Map<String, String> params = new HashMap<>(d.params());
        // A generated MAC is part of what a guest knows: keep it, so a restart gives the same one.
        macOf(d).ifPresent(mac -> params.putIfAbsent("mac", mac));
        return new TopologyDocument.DeviceEntry(d.devid().unsigned(), d.type(), f.limitedNames(d.featureCatalog()), params);
    }

    /** The name an operator gave a namespace ({@code ip netns add NAME}), as the API and the store name it. */
    public static String namespaceName(NetNamespace ns) {
        return ns.isCurrent() ? "" : ns.path().getFileName().toString();
    }

    /** The MAC in a device's config space, for models that have one. */
    public static java.util.Optional<String> macOf(Device d) {
        return d.model().config().field("mac").filter(f -> f.width() == 6).map(f -> MacAddress.toString(
                MacAddress.fromBytes(java.util.Arrays.copyOfRange(d.configSnapshot(), f.offset(), f.offset() + 6))));
    }

    /**
     * Builds {@code doc}'s containers, networks and devices (same devids) on {@code bus}. Its exposures
     * need the connectors: {@link TopologyStartup} opens them after this.
     */
    public static void build(Bus bus, TopologyDocument doc) {
        build(bus, doc, System.out);
    }

    /**
     * As {@link #build(Bus, TopologyDocument)}; a TAP port that cannot be attached again (its namespace
     * is gone, say after the host rebooted) does not stop the start: {@code out} says which and why, and
     * the store, which follows the bus, no longer lists it after the next change.
     */
    public static void build(Bus bus, TopologyDocument doc, PrintStream out) {
        for (TopologyDocument.ContainerEntry ce : doc.containers()) {
            Container c = bus.container(ce.name()).orElseGet(() -> bus.createContainer(ce.name()));
            c.limitDevices(ce.deviceLimit());
            Networks n = Networks.of(c);
            for (TopologyDocument.NetworkEntry net : ce.networks()) if (n.network(net.name()).isEmpty()) n.create(net.name());
            for (TopologyDocument.NetworkEntry net : ce.networks()) {
                for (TopologyDocument.PortEntry p : net.ports()) {
                    try {
                        n.attachTap(net.name(), p.ifname(), NetNamespace.named(p.namespace()), c.resource(dev.jvbus.core.spi.PollGroups.RESOURCE).pick());
                    } catch (RuntimeException e) {
                        out.println("jvbus: TAP port " + p.ifname() + " in namespace '" + p.namespace() + "' on network '" + net.name()
                                + "' of container '" + ce.name() + "' is not attached again: " + e.getMessage());
                    }
                }
            }
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
