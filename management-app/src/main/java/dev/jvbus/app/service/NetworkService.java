package dev.jvbus.app.service;

import dev.jvbus.net.NetworkException;
import dev.jvbus.net.NetworkInfo;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortBackend;
import dev.jvbus.core.bus.Device;
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
