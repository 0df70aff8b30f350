package dev.jvbus.app.service;

import dev.jvbus.net.NetworkException;
import dev.jvbus.net.NetworkInfo;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortBackend;
import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.core.sys.TapException;
import java.nio.file.Files;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.Map;
import org.springframework.stereotype.Service;

/** A container's networks: create, list, show (ports with counters, MAC table), delete. */
@Service
public class NetworkService {
    private final BusChanges changes;
    private final ContainerService containers;
    private final DeviceService devices;

    public NetworkService(BusChanges changes, ContainerService containers, DeviceService devices) {
        this.changes = changes;
        this.containers = containers;
        this.devices = devices;
    }

    public List<NetworkInfo> list(String container) {
        return networks(container).list();
    }

    public NetworkInfo show(String container, String name) {
        return networks(container).info(name).orElseThrow(() -> noSuchNetwork(container, name));
    }

    public NetworkInfo create(String container, String name) {
        return changes.apply(() -> {
            Networks n = networks(container);
            try {
                Networks.checkName(name);
            } catch (IllegalArgumentException e) {
                throw new OperationRefused(ProblemType.INVALID_NAME, e.getMessage(), Map.of("field", "name"));
            }
            if (n.network(name).isPresent())
                throw new OperationRefused(ProblemType.NAME_TAKEN, "network '" + name + "' already exists in container '" + container + "'",
                        Map.of("field", "name"));
            n.create(name);
            return new BusChanges.Outcome<>(n.info(name).orElseThrow(),
                    BusEvent.now("network-created", path(container, name), Map.of("container", container, "network", name)));
        });
    }

    /**
     * Deletes a network. A network is in use while a device names it (whether or not its driver has
     * started and its port exists yet: the device would join it on start) or a port is on it; then it
     * is refused, naming them, unless {@code force}: its devices are unplugged first. A TAP port is
     * never closed by force: it is the host's, and the refusal names it.
     */
    public void delete(String container, String name, boolean force) {
        changes.apply(() -> {
            Networks n = networks(container);
            NetworkInfo info = n.info(name).orElseThrow(() -> noSuchNetwork(container, name));
            Set<Long> onIt = new TreeSet<>();
            for (Device d : containers.require(container).devices())
                if (name.equals(d.params().get("network"))) onIt.add(d.devid().unsigned());
            for (var p : info.ports()) if (p.backend() instanceof PortBackend.Device d) onIt.add(d.devid());
            if (!onIt.isEmpty() && !force)
                throw new OperationRefused(ProblemType.NETWORK_IN_USE, "network '" + name + "' in container '" + container
                        + "' has devices " + onIt + "; remove them first, or delete with ?force=true to unplug them",
                        Map.of("devices", List.copyOf(onIt)));
            for (long devid : onIt) changes.requireIdle(container, devid);   // all or none: no half-forced delete
            for (long devid : onIt) devices.removeUnchecked(container, devid);
            try {
                n.delete(name);
            } catch (NetworkException e) {
                throw new OperationRefused(ProblemType.NETWORK_IN_USE, e.getMessage());
            }
            return new BusChanges.Outcome<>(null,
                    BusEvent.now("network-deleted", path(container, name), Map.of("container", container, "network", name)));
        });
    }

    /**
     * Attaches a TAP port: an interface {@code ifname} in the operator's network namespace, link up,
     * joined to the network. The namespace must exist (the bus makes none: it is the host's); anything
     * the kernel refuses is refused with its reason, and leaves no port and no interface behind.
     */
    public PortView attachPort(String container, String network, PortRequest request) {
        return changes.apply(() -> {
            Networks n = networks(container);
            if (n.network(network).isEmpty()) throw noSuchNetwork(container, network);
            String nsName = request == null ? null : request.namespace();
            NetNamespace ns = namespace(nsName, Map.of("field", "namespace"));
            if (request.ifname() == null || request.ifname().isBlank())
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a TAP port needs an \"ifname\" (1 to 15 bytes, e.g. tap0 or tap%d)",
                        Map.of("field", "ifname"));
            Networks.TapAttachment a;
            try {
                a = n.attachTap(network, request.ifname(), ns, tapReader(container));
            } catch (IllegalArgumentException e) {
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(), Map.of("field", "ifname"));
            } catch (TapException e) {
                throw new OperationRefused(ProblemType.REFUSED, "the host refused TAP '" + request.ifname() + "' in namespace '" + nsName
                        + "': " + e.getMessage(), Map.of("field", "ifname"));
            }
            return new BusChanges.Outcome<>(view(a), BusEvent.now("port-attached", portPath(container, network, a.portId()),
                    Map.of("container", container, "network", network, "port", a.portId(), "namespace", nsName, "ifname", a.ifname())));
        });
    }

    /**
     * The operator's network namespace by the name {@code ip netns add} gave it, which must exist;
     * refused naming the input ({@code where}) otherwise.
     */
    static NetNamespace namespace(String nsName, Map<String, Object> where) {
        if (nsName == null || nsName.isBlank())
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a TAP port needs a \"namespace\": the name 'ip netns add' gave it", where);
        NetNamespace ns;
        try {
            ns = NetNamespace.named(nsName);
        } catch (IllegalArgumentException e) {
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(), where);
        }
        if (!Files.exists(ns.path()))
            throw new OperationRefused(ProblemType.NO_SUCH_NAMESPACE, "there is no network namespace '" + nsName + "' (no " + ns.path()
                    + "); create it first with 'ip netns add " + nsName + "'", where);
        return ns;
    }

    /** Detaches a TAP port the operator attached: it leaves the switch and its interface is removed. */
    public void detachPort(String container, String network, int id) {
        changes.apply(() -> {
            Networks n = networks(container);
            if (n.network(network).isEmpty()) throw noSuchNetwork(container, network);
            try {
                n.detachTap(network, id);
            } catch (NetworkException e) {
                throw new OperationRefused(ProblemType.NO_SUCH_PORT, e.getMessage());
            }
            return new BusChanges.Outcome<>(null, BusEvent.now("port-detached", portPath(container, network, id),
                    Map.of("container", container, "network", network, "port", id)));
        });
    }

    static PortView view(Networks.TapAttachment a) {
        return new PortView(a.portId(), a.network(), TopologyRecorder.namespaceName(a.namespace()), a.ifname(), a.port().switchPort().stats(), a.port().stats());
    }

    static String portPath(String container, String network, int id) {
        return path(container, network) + "/ports/" + id;
    }

    /** The poll group that reads a new TAP: the container's, as for a device's tx queue (one thread per core). */
    private dev.jvbus.core.ring.PollGroup tapReader(String container) {
        return containers.require(container).resource(dev.jvbus.core.spi.PollGroups.RESOURCE).pick();
    }

    Networks networks(String container) {
        return Networks.of(containers.require(container));
    }

    static OperationRefused noSuchNetwork(String container, String name) {
        return new OperationRefused(ProblemType.NO_SUCH_NETWORK, "no network '" + name + "' in container '" + container + "'");
    }

    static String path(String container, String name) {
        return ContainerService.path(container) + "/networks/" + name;
    }
}
