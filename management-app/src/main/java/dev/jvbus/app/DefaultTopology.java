package dev.jvbus.app;

import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.app.store.ExposureKind;
import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.app.store.TopologyStartup;
import dev.jvbus.connector.vhostuser.VhostUserConnector;
import dev.jvbus.core.memory.CacheLines;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.net.Networks;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

/**
 * The embedded default: one container whose default devices sit on one switch, exposed through the
 * shm connector (host processes) and, for virtio devices, vhost-user (QEMU, DPDK), made on the first
 * start only and recorded in the topology store; later starts get them (or what the operator made of
 * them since) from the store. Where to connect is printed on stdout at every start, so a person who ran
 * {@code ./jvbus run} sees it. The sockets are exposures in the container's
 * {@link dev.jvbus.core.bus.Exposures}: the bus lists them and, when it closes at shutdown, closes them.
 */
@Component
class DefaultTopology implements ApplicationRunner {
    private final Bus bus;
    private final ShmConnector shm;
    private final VhostUserConnector vhostUser;
    private final String containerName;
    private final List<String> deviceTypes;
    private final String network;
    private final PrintStream out = System.out;
    private final TopologyStartup startup;
    private final TopologyRecorder recorder;

    DefaultTopology(Bus bus, ShmConnector shm, VhostUserConnector vhostUser,
                    @Value("${jvbus.default.container:default}") String containerName,
                    @Value("${jvbus.default.devices:venet,virtio-net}") List<String> deviceTypes,
                    @Value("${jvbus.default.network:lan0}") String network,
                    TopologyStartup startup, TopologyRecorder recorder) {
        this.bus = bus;
        this.shm = shm;
        this.vhostUser = vhostUser;
        this.startup = startup;
        this.recorder = recorder;
        this.containerName = containerName;
        this.deviceTypes = deviceTypes;
        this.network = network;
    }

    @Override
    public void run(ApplicationArguments args) throws Exception {
        out.println("jvbus: device models on the class path: " + (bus.models().types().isEmpty() ? "none" : bus.models().types()));
        if (!startup.restored()) createDefault();   // first start only: afterwards the store is the truth
        for (Container c : bus.containers()) describe(c);
    }

    /** Makes the default container, devices and exposures, and records them: from now on they are the store's. */
    private void createDefault() {
        Container c = bus.container(containerName).orElseGet(() -> bus.createContainer(containerName));
        Networks.of(c).getOrCreate(network);
        for (String type : deviceTypes) {
            if (bus.models().model(type).isEmpty()) {
                out.println("jvbus: model '" + type + "' is not on the class path, so the default container has no " + type + " device");
                continue;
            }
            c.addDevice(type, -1L, Map.of("network", network));
        }
        shm.expose(c.name());
        for (Device d : c.devices()) if (d.model().virtioDeviceId() != 0) vhostUser.serve(d);
        recorder.record(bus);
    }

    /**
     * Says what each of the container's devices offers and where each of its exposures is, as the store or the
     * first start made them: a restart from the store says the same as the first start did.
     */
    private void describe(Container c) {
        for (Device d : c.devices()) {
            String net = d.params().get("network");
            out.println("jvbus: container '" + c.name() + "' devid " + d.devid() + " type " + d.type()
                    + (net == null ? "" : " on network '" + net + "'") + " offers " + d.featureCatalog().names(d.features().offered()));
        }
        for (Exposure e : c.exposures().list()) {
            ExposureInfo i = e.info();
            Optional<Device> d = i.devid().flatMap(id -> c.devices().stream().filter(x -> x.devid().equals(id)).findFirst());
            switch (ExposureKind.byListed(i.kind()).orElse(null)) {
                case SHM -> out.println("jvbus: shm socket for container '" + c.name() + "': " + i.socket());
                case VHOST_USER_SERVER -> out.println("jvbus: vhost-user socket for devid " + i.devid().orElseThrow() + " ("
                        + d.map(Device::type).orElse("?") + "): " + i.socket() + d.map(DefaultTopology::frontEndMac).orElse(""));
                case VHOST_USER_CLIENT -> out.println("jvbus: vhost-user client for devid " + i.devid().orElseThrow() + " ("
                        + d.map(Device::type).orElse("?") + ") connects to the front-end at " + i.socket()
                        + d.map(DefaultTopology::frontEndMac).orElse(""));
                case null -> out.println("jvbus: " + i.kind() + " exposure " + i.id() + " of container '" + c.name() + "': " + i.socket());
            }
        }
        if (c.exposures().list().isEmpty())
            out.println("jvbus: container '" + c.name() + "' is not exposed; POST /api/v1/exposures makes it reachable");
        // Whether tx workers may evict the descriptor and frame lines they read (a native part, built where gcc was): say why not.
        out.println("jvbus: cache-line eviction on virtio-net tx: " + (CacheLines.available()
                ? "available (each queue takes it where its measured throughput gains)" : "off: " + CacheLines.unavailableBecause()));
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
}
