package dev.jvbus.app.store;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What the operator built, as the topology store keeps it: containers with their device limit,
 * networks and devices (devid, type, the features the operator denied by name, and the creation
 * parameters, the MAC included even where the model generated it). Enough to build the same bus
 * again after a restart: the same devids, MACs and networks. ANY CHANGE bumps {@link #VERSION}.
 */
public record TopologyDocument(String format, int version, List<ContainerEntry> containers) {
    public static final String FORMAT = "jvbus.topology";
    public static final int VERSION = 1;

    public TopologyDocument {
        require(format, "format");
        containers = List.copyOf(require(containers, "containers"));
    }

    public static TopologyDocument of(List<ContainerEntry> containers) {
        return new TopologyDocument(FORMAT, VERSION, containers);
    }

    /** {@code nextDevid}: devids below it were used, and stay unused after a restart. */
    public record ContainerEntry(String name, int deviceLimit, long nextDevid, List<String> networks, List<DeviceEntry> devices) {
        public ContainerEntry {
            require(name, "containers[].name");
            networks = List.copyOf(require(networks, "containers[" + name + "].networks"));
            devices = List.copyOf(require(devices, "containers[" + name + "].devices"));
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
