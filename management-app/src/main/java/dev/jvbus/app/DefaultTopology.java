package dev.jvbus.app;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import java.io.PrintStream;
import java.util.List;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

/**
 * The embedded default: one container with the default devices, announced on stdout so a person
 * who ran {@code ./jvbus run} sees what is there and where to connect.
 */
@Component
class DefaultTopology implements ApplicationRunner {
    private final Bus bus;
    private final String containerName;
    private final List<String> deviceTypes;
    private final PrintStream out = System.out;

    DefaultTopology(Bus bus,
                    @Value("${jvbus.default.container:default}") String containerName,
                    @Value("${jvbus.default.devices:venet,virtio-net}") List<String> deviceTypes) {
        this.bus = bus;
        this.containerName = containerName;
        this.deviceTypes = deviceTypes;
    }

    @Override
    public void run(ApplicationArguments args) {
        Container c = bus.container(containerName).orElseGet(() -> bus.createContainer(containerName));
        out.println("jvbus: device models on the class path: " + (bus.models().types().isEmpty() ? "none" : bus.models().types()));
        for (String type : deviceTypes) {
            if (bus.models().model(type).isEmpty()) {
                out.println("jvbus: model '" + type + "' is not on the class path, so the default container has no " + type + " device");
                continue;
            }
            Device d = c.addDevice(type);
            out.println("jvbus: container '" + c.name() + "' devid " + d.devid() + " type " + d.type()
                    + " offers " + d.featureCatalog().names(d.features().offered()));
        }
        out.println("jvbus: container '" + c.name() + "' ready with " + c.devices().size() + " device(s); "
                + "connectors (shm, vhost-user sockets) are not built yet, so there is no socket to print");
    }
}
