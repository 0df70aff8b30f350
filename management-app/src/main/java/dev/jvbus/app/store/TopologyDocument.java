package dev.jvbus.app.store;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What the operator built, as the topology store keeps it: containers with their device limit,
 * networks with the TAP ports the operator attached to them, devices (devid, type, the features the
 * operator denied by name, and the creation parameters, the MAC included even where the model
 * generated it) and exposures (id, kind, mode, devid, socket path). Enough to build the same bus again
 * after a restart: the same devids, MACs, networks and TAP ports, and exposures under the same ids on
 * the same sockets. ANY CHANGE bumps {@link #VERSION}.
 *
 * <p>Version 2 made each network an object with its {@code ports} and added the exposures and
 * {@code nextExposureId}. Version 1 files are refused by name rather than read as if they had no
 * exposures: that would close every socket they stood for.
 *
 * @param nextExposureId exposure ids numbered below it were used, and stay unused after a restart
 */
public record TopologyDocument(String format, int version, long nextExposureId, List<ContainerEntry> containers) {
    public static final String FORMAT = "jvbus.topology";
    public static final int VERSION = 2;

    public TopologyDocument {
        require(format, "format");
        containers = List.copyOf(require(containers, "containers"));
    }

    public static TopologyDocument of(long nextExposureId, List<ContainerEntry> containers) {
        return new TopologyDocument(FORMAT, VERSION, nextExposureId, containers);
    }

    /** {@code nextDevid}: devids below it were used, and stay unused after a restart. */
    public record ContainerEntry(String name, int deviceLimit, long nextDevid, List<NetworkEntry> networks, List<DeviceEntry> devices,
                                 List<ExposureEntry> exposures) {
        public ContainerEntry {
            require(name, "containers[].name");
            networks = List.copyOf(require(networks, "containers[" + name + "].networks"));
            devices = List.copyOf(require(devices, "containers[" + name + "].devices"));
            exposures = List.copyOf(require(exposures, "containers[" + name + "].exposures"));
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

    /**
     * One exposure of the container or of one of its devices.
     *
     * @param id    as the bus listed it, e.g. {@code vhost-user-server-3}; a restart gives it back
     * @param kind  {@code shm} or {@code vhost-user}
     * @param devid the exposed device (vhost-user), or null (shm exposes the whole container)
     * @param mode  {@code server} or {@code client} for vhost-user, null for shm
     * @param path  the socket: a bare name is a socket in the runtime directory (wherever that is on the
     *              next start), an absolute path a socket in a directory the operator approved
     */
    public record ExposureEntry(String id, String kind, Long devid, String mode, String path) {
        private static final Pattern ID = Pattern.compile("[a-z][a-z-]*-[0-9]{1,18}");

        public ExposureEntry {
            require(id, "exposures[].id");
            if (!ID.matcher(id).matches()) throw new IllegalArgumentException("exposure id '" + id + "' is not <kind>-<number>");
            require(kind, "exposures[" + id + "].kind");
            require(path, "exposures[" + id + "].path");
            ExposureKind k = ExposureKind.of(kind, mode).orElseThrow(() -> new IllegalArgumentException(
                    "exposure " + id + " has kind '" + kind + "' and mode '" + mode + "'; known: shm (no mode), vhost-user (server or client)"));
            if (k.ofDevice() != (devid != null))
                throw new IllegalArgumentException("exposure " + id + ": " + (k.ofDevice() ? "vhost-user needs a devid" : "shm has no devid"));
        }

        /** The number in the id, which orders the exposures as the bus opened them. */
        public long number() {
            return Long.parseLong(id.substring(id.lastIndexOf('-') + 1));
        }

        public ExposureKind exposureKind() {
            return ExposureKind.of(kind, mode).orElseThrow();
        }
    }

    private static <T> T require(T value, String field) {
        return Objects.requireNonNull(value, () -> "topology document has no \"" + field + "\"");
    }
}
