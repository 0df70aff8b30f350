package dev.jvbus.app.console;

import dev.jvbus.app.service.ContainerService;
import dev.jvbus.app.service.ContainerView;
import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.DeviceView;
import dev.jvbus.app.service.ExposureService;
import dev.jvbus.app.service.ExposureView;
import dev.jvbus.app.service.NetworkService;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.net.NetworkInfo;
import java.util.ArrayList;
import java.util.List;
import org.springframework.stereotype.Component;

/**
 * The overview's tree, read through the services: containers, and in each its networks (with their
 * ports) and its devices (type, MAC, status, features, exposures with their sessions), plus the
 * exposures of the container itself (shm). A container or device that goes while the tree is read is
 * left out, not an error: the next refresh shows the bus as it is.
 */
@Component
public class Overview {
    private final ContainerService containers;
    private final NetworkService networks;
    private final DeviceService devices;
    private final ExposureService exposures;

    public Overview(ContainerService containers, NetworkService networks, DeviceService devices, ExposureService exposures) {
        this.containers = containers;
        this.networks = networks;
        this.devices = devices;
        this.exposures = exposures;
    }

    public record ContainerNode(ContainerView container, List<NetworkInfo> networks, List<DeviceNode> devices,
                                List<ExposureView> exposures) { }

    public record DeviceNode(DeviceView device, String mac) { }

    public List<ContainerNode> tree() {
        List<ExposureView> all = exposures.list();
        List<ContainerNode> out = new ArrayList<>();
        for (ContainerView c : containers.list()) {
            try {
                List<DeviceNode> ds = new ArrayList<>();
                for (DeviceView d : devices.list(c.name()))
                    ds.add(new DeviceNode(d, macOf(c.name(), d.devid())));
                out.add(new ContainerNode(c, networks.list(c.name()), ds,
                        all.stream().filter(e -> e.container().equals(c.name()) && e.devid() == null).toList()));
            } catch (OperationRefused gone) {
                // deleted while we read it
            }
        }
        return out;
    }

    String macOf(String container, long devid) {
        try {
            return devices.mac(container, devid).orElse(null);
        } catch (OperationRefused gone) {
            return null;
        }
    }
}
