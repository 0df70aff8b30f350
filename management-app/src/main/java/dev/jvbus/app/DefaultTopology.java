package dev.jvbus.app;

import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.app.store.TopologyStartup;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.net.Networks;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

/**
 * The embedded default: one container whose default devices sit on one switch, exposed through the
 * shm connector (host processes) and, for virtio devices, vhost-user (QEMU, DPDK). What it made and
 * where to connect is printed on stdout, so a person who ran {@code ./jvbus run} sees it.
 */
@Component
class DefaultTopology implements ApplicationRunner, DisposableBean {
    private final Bus bus;
    private final String containerName;
    private final List<String> deviceTypes;
    private final String network;
    private final Path runtimeDir;
    private final PrintStream out = System.out;
    private final List<AutoCloseable> opened = new ArrayList<>();
    private final TopologyStartup startup;
    private final TopologyRecorder recorder;

    DefaultTopology(Bus bus,
                    @Value("${jvbus.default.container:default}") String containerName,
                    @Value("${jvbus.default.devices:venet,virtio-net}") List<String> deviceTypes,
                    @Value("${jvbus.default.network:lan0}") String network,
                    @Value("${jvbus.runtime-dir:}") String runtimeDir,
                    TopologyStartup startup, TopologyRecorder recorder) {
        this.bus = bus;
        this.startup = startup;
        this.recorder = recorder;
        this.containerName = containerName;
        this.deviceTypes = deviceTypes;
        this.network = network;
        this.runtimeDir = runtimeDir.isBlank()
                ? Path.of(System.getProperty("java.io.tmpdir"), "jvbus-" + System.getProperty("user.name"))
                : Path.of(runtimeDir);
    }

    @Override
    public void run(ApplicationArguments args) throws Exception {
        out.println("jvbus: device models on the class path: " + (bus.models().types().isEmpty() ? "none" : bus.models().types()));
        if (!startup.restored()) createDefault();   // first start only: afterwards the store is the truth
        for (Container c : bus.containers()) expose(c);
    }

    private void createDefault() {
        Container c = bus.container(containerName).orElseGet(() -> bus.createContainer(containerName));
        Networks.of(c).getOrCreate(network);
        for (String type : deviceTypes) {
            if (bus.models().model(type).isEmpty()) {
                out.println("jvbus: model '" + type + "' is not on the class path, so the default container has no " + type + " device");
                continue;
            }
            Device d = c.addDevice(type, -1L, Map.of("network", network));
            out.println("jvbus: container '" + c.name() + "' devid " + d.devid() + " type " + d.type() + " on network '" + network
                    + "' offers " + d.featureCatalog().names(d.features().offered()));
        }
        recorder.record(bus);
    }

    private void expose(Container c) throws Exception {
        List<Device> made = c.devices();
        ShmConnector shm = new ShmConnector(bus, runtimeDir);
        opened.add(shm);
        out.println("jvbus: shm socket for container '" + c.name() + "': " + shm.expose(c.name()).path());
        for (Device d : made) {
            if (d.model().virtioDeviceId() == 0) continue;
            Path sock = runtimeDir.resolve(c.name() + "-" + d.devid() + "-" + d.type() + ".vhost-user.sock");
            Files.deleteIfExists(sock);
            VhostUserBackend vu = VhostUserBackend.serve(d, sock);
            opened.add(vu);
            out.println("jvbus: vhost-user socket for devid " + d.devid() + " (" + d.type() + "): " + sock + frontEndMac(d));
        }
        out.println("jvbus: container '" + c.name() + "' ready with " + c.devices().size() + " device(s); Ctrl-C stops the bus");
    }

    /**
     * A vhost-user front-end (QEMU) keeps its own config space, so its guest sends from the MAC the
     * front-end was given; the switch holds the device's port to the device's MAC, so say which one.
     */
    private static String frontEndMac(Device d) {
        return TopologyRecorder.macOf(d)
                .map(mac -> " (give the front-end mac=" + mac + ": the switch drops frames from any other source MAC)")
                .orElse("");
    }

    @Override
    public void destroy() {
        for (int i = opened.size() - 1; i >= 0; i--) {
            try {
                opened.get(i).close();
            } catch (Exception e) {
                // shutting down: nothing useful to do with a failure to close
            }
        }
    }
}
