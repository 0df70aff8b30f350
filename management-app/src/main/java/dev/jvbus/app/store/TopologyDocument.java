package dev.jvbus.app.store;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the operator built, as the topology store keeps it: containers with their device limit,
 * networks and devices (devid, type, the features the operator denied by name, and the creation
 * parameters, the MAC included even where the model generated it), and on each network the TAP ports
 * the operator attached. Enough to build the same bus again after a restart: the same devids, MACs,
 * networks and TAP ports. ANY CHANGE bumps {@link #VERSION}.
 *
 * <p>Version 2 made each network an object with its {@code ports}; version 1 (networks as names) is
 * still read: {@link TopologyStore} upgrades it as it loads.
 */
public record TopologyDocument(String format, int version, List<ContainerEntry> containers) {
    public static final String FORMAT = "jvbus.topology";
    public static final int VERSION = 2;

    public TopologyDocument {
        require(format, "format");
        containers = List.copyOf(require(containers, "containers"));
    }

    public static TopologyDocument of(List<ContainerEntry> containers) {
        return new TopologyDocument(FORMAT, VERSION, containers);
    }

    /** {@code nextDevid}: devids below it were used, and stay unused after a restart. */
    public record ContainerEntry(String name, int deviceLimit, long nextDevid, List<NetworkEntry> networks, List<DeviceEntry> devices) {
        public ContainerEntry {
            require(name, "containers[].name");
            networks = List.copyOf(require(networks, "containers[" + name + "].networks"));
            devices = List.copyOf(require(devices, "containers[" + name + "].devices"));
        }
    }

    /** A network and the TAP ports on it, in the order they were attached. */
    public record NetworkEntry(String name, List<PortEntry> ports) {
        public NetworkEntry {
            require(name, "networks[].name");
            ports = List.copyOf(require(ports, "networks[" + name + "].ports"));
        }
    }

    /** A TAP port: its interface name in the named network namespace ({@code ip netns add NAME}). */
    public record PortEntry(String namespace, String ifname) {
        public PortEntry {
            require(namespace, "ports[].namespace");
            require(ifname, "ports[].ifname");
        }
    }

    public record DeviceEntry(long devid, String type, List<String> deny, Map<String, String> parameters) {
        public DeviceEntry {
            require(type, "devices[" + devid + "].type");
            deny = List.copyOf(require(deny, "devices[" + devid + "].deny"));
            parameters = Map.copyOf(require(parameters, "devices[" + devid + "].parameters"));
        }
    }

    private static <T> T require(T value, String field) {
        return Objects.requireNonNull(value, () -> "topology document has no \"" + field + "\"");
    }
}
