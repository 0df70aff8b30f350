package dev.jvbus.app.service;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.net.Networks;
import java.util.List;
import java.util.Map;
import org.springframework.stereotype.Service;

/** Containers: create, list, show, delete (which unplugs every device in order). */
@Service
public class ContainerService {
    private final BusChanges changes;

    public ContainerService(BusChanges changes) {
        this.changes = changes;
    }

    public List<ContainerView> list() {
        return changes.bus().containers().stream().map(ContainerService::view).toList();
    }

    public ContainerView show(String name) {
        return view(require(name));
    }

    public ContainerView create(String name) {
        return changes.apply(() -> {
            Bus bus = changes.bus();
            if (bus.container(name).isPresent())
                throw new OperationRefused(ProblemType.NAME_TAKEN, "container '" + name + "' already exists", Map.of("field", "name"));
            Container c;
            try {
                c = bus.createContainer(name);
            } catch (BusException e) {
                throw new OperationRefused(ProblemType.INVALID_NAME, e.getMessage(), Map.of("field", "name"));
            }
            return new BusChanges.Outcome<>(view(c), BusEvent.now("container-created", path(name), Map.of("container", name)));
        });
    }

    /** Unplugs every device (each reset and its driver told), then frees the name. */
    public void delete(String name) {
        changes.apply(() -> {
            require(name);
            changes.requireIdle(name);   // no device of it in the middle of an operation
            changes.bus().destroyContainer(name);
            return new BusChanges.Outcome<>(null, null);   // the container's own ContainerDestroyed event is forwarded
        });
    }

    /** The named container, or the problem that says it does not exist. */
    public Container require(String name) {
        return changes.bus().container(name).orElseThrow(() -> new OperationRefused(ProblemType.NO_SUCH_CONTAINER,
                "no such container '" + name + "'; this bus has " + changes.bus().containers().stream().map(Container::name).toList()));
    }

    static String path(String container) {
        return "/api/v1/containers/" + container;
    }

    static ContainerView view(Container c) {
        return new ContainerView(c.name(), c.deviceLimit(),
                c.devices().stream().map(d -> new ContainerView.DeviceSummary(d.devid().unsigned(), d.type(),
                        DeviceStatus.names(d.status().bits()))).toList(),
                Networks.of(c).names());
    }
}
