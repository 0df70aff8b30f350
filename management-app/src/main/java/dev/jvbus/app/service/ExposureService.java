package dev.jvbus.app.service;

import dev.jvbus.app.store.ExposureKind;
import dev.jvbus.app.store.ExposureReopener;
import dev.jvbus.app.store.TopologyDocument;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.connector.vhostuser.VhostUserConnector;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.NoSuchDeviceException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Service;

/**
 * Exposures: a container made reachable on the shm connector, or one virtio device on vhost-user (server
 * or client mode); list them with their sessions, show one, close one. Creating is checked whole before
 * any socket is made, so a refused one leaves nothing behind. Events (exposure-created/-closed,
 * session-opened/-closed) come from the bus's own exposure registry (see {@link ContainerEventBridge}),
 * so they tell of exposures however they open or close: here, by the store at start, by an unplug.
 */
@Service
public class ExposureService implements ExposureReopener {
    private final BusChanges changes;
    private final ContainerService containers;
    private final DeviceService devices;
    private final ShmConnector shm;
    private final VhostUserConnector vhostUser;
    private final SocketPaths paths;
    private final int limit;

    public ExposureService(BusChanges changes, ContainerService containers, DeviceService devices, ShmConnector shm,
                           VhostUserConnector vhostUser, SocketPaths paths, @Value("${jvbus.exposures.limit:64}") int limit) {
        this.changes = changes;
        this.containers = containers;
        this.devices = devices;
        this.shm = shm;
        this.vhostUser = vhostUser;
        this.paths = paths;
        this.limit = limit;
    }

    public List<ExposureView> list() {
        return changes.bus().containers().stream()
                .flatMap(c -> c.exposures().list().stream().map(e -> view(e, c))).toList();
    }

    public ExposureView show(String id) {
        Exposure e = require(id);
        return view(e, containers.require(e.container()));
    }

    /**
     * Opens an exposure. Every input is checked (kind, what it exposes, mode, socket path, what is already
     * there, the limit) before the connector is asked.
     */
    public ExposureView create(ExposureRequest r) {
        return changes.apply(() -> {
            ExposureKind kind = kindOf(r);
            if (r.container() == null || r.container().isBlank())
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "an exposure needs a \"container\": the one to expose, "
                        + "or the one of the device", Map.of("field", "container"));
            Container c = containers.require(r.container());
            Exposure e = kind == ExposureKind.SHM ? exposeContainer(c, r) : exposeDevice(c, kind, r);
            return new BusChanges.Outcome<>(view(e, c), null);   // the registry's own event is forwarded
        });
    }

    /** Closes an exposure: its sessions end (their devices are reset), a server socket is removed. */
    public void close(String id) {
        changes.apply(() -> {
            require(id).close();
            return new BusChanges.Outcome<>(null, null);
        });
    }

    /** The topology store, at start: the same checks as {@link #create}, but no limit (the store is the truth). */
    @Override
    public Exposure reopen(Container c, TopologyDocument.ExposureEntry stored) {
        ExposureKind kind = stored.exposureKind();
        if (kind == ExposureKind.SHM) return shm.expose(c.name());
        Device d;
        try {
            d = c.device(new DevId(stored.devid().intValue()));
        } catch (NoSuchDeviceException e) {
            throw new BusException("container '" + c.name() + "' has no device " + stored.devid());
        }
        Path socket = paths.resolve(stored.path());
        if (kind == ExposureKind.VHOST_USER_SERVER) paths.checkFreeToListen(socket);
        return open(d, kind, socket);
    }

    /** The device's exposures, for its document. */
    static List<ExposureView> ofDevice(Device d) {
        return d.exposures().of(d.devid()).stream()
                .map(e -> ExposureView.of(e.info(), id -> id.equals(d.devid()) ? Optional.of(d) : Optional.empty())).toList();
    }

    private Exposure exposeContainer(Container c, ExposureRequest r) {
        if (r.devid() != null)
            throw new OperationRefused(ProblemType.KIND_NOT_APPLICABLE, "shm exposes a whole container, every device in it, to host "
                    + "processes; leave out \"devid\", or expose the one device on vhost-user", Map.of("field", "devid"));
        Path socket = shm.socketPath(c.name());
        if (r.path() != null && !SocketPaths.sameSocket(paths.runtimeDir(), r.path(), socket))
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "the shm socket of container '" + c.name() + "' is always "
                    + socket + "; leave out \"path\"", Map.of("field", "path"));
        Optional<Exposure> there = c.exposures().list().stream().filter(x -> x.devid().isEmpty()
                && ExposureKind.byListed(x.info().kind()).orElse(null) == ExposureKind.SHM).findFirst();
        if (there.isPresent())
            throw alreadyExposed("container '" + c.name() + "'", there.get());
        checkUnused(SocketPaths.canonical(socket));
        checkLimit();
        try {
            return shm.expose(c.name());
        } catch (RuntimeException e) {
            throw new OperationRefused(ProblemType.REFUSED, "cannot expose container '" + c.name() + "' on " + socket + ": " + e.getMessage());
        }
    }

    private Exposure exposeDevice(Container c, ExposureKind kind, ExposureRequest r) {
        if (r.devid() == null)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "vhost-user exposes one device: give its \"devid\" (container '"
                    + c.name() + "' has " + c.devices().stream().map(x -> x.devid().unsigned()).toList() + ")", Map.of("field", "devid"));
        Device d = devices.require(c.name(), r.devid());
        if (d.model().virtioDeviceId() == 0)
            throw new OperationRefused(ProblemType.KIND_NOT_APPLICABLE, "devid " + r.devid() + " is a " + d.type() + " device, not a "
                    + "virtio device: a vhost-user front-end drives virtio devices only; expose its container on shm instead",
                    Map.of("field", "kind"));
        List<Exposure> there = c.exposures().of(d.devid());
        if (!there.isEmpty())
            throw alreadyExposed("devid " + r.devid() + " in container '" + c.name() + "'", there.getFirst());
        Path socket;
        if (r.path() != null) socket = paths.resolve(r.path());
        else if (kind == ExposureKind.VHOST_USER_CLIENT)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "client mode connects to a socket the front-end listens on: "
                    + "give its \"path\"", Map.of("field", "path"));
        else socket = paths.resolve(vhostUser.socketPath(d).toString());   // the default place, held to the same rules (its length)
        checkUnused(socket);
        if (kind == ExposureKind.VHOST_USER_SERVER) paths.checkFreeToListen(socket);
        checkLimit();
        try {
            return open(d, kind, socket);
        } catch (RuntimeException e) {
            // What is left is the kernel or the bus refusing (the device went, bind failed): the connector made nothing.
            throw new OperationRefused(ProblemType.REFUSED, "cannot expose devid " + r.devid() + " on " + socket + ": " + e.getMessage());
        }
    }

    /** Opens a checked vhost-user exposure. */
    private Exposure open(Device d, ExposureKind kind, Path socket) {
        return kind == ExposureKind.VHOST_USER_SERVER ? vhostUser.serve(d, socket) : vhostUser.connect(d, socket);
    }

    /** No two exposures on one socket: the second would replace (server) or talk to (client) the first's. */
    private void checkUnused(Path socket) {
        for (Exposure other : changes.bus().exposures())
            if (SocketPaths.canonical(other.info().socket()).equals(socket))
                throw new OperationRefused(ProblemType.NAME_TAKEN, socket + " is the socket of exposure " + other.id()
                        + "; choose another path", Map.of("field", "path", "exposure", other.id()));
    }

    private void checkLimit() {
        int live = changes.bus().exposures().size();
        if (live >= limit)
            throw new OperationRefused(ProblemType.LIMIT_REACHED, "this bus already has its limit of " + limit
                    + " exposures (jvbus.exposures.limit); close one first");
    }

    /** kind (and mode): {@code shm}, {@code vhost-user} with mode server (default) or client, or a listed kind. */
    static ExposureKind kindOf(ExposureRequest r) {
        if (r.kind() == null || r.kind().isBlank())
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "an exposure needs a \"kind\": shm (a container, for host processes) "
                    + "or vhost-user (a virtio device, for QEMU or DPDK)", Map.of("field", "kind"));
        Optional<ExposureKind> listed = ExposureKind.byListed(r.kind());
        if (listed.isPresent() && listed.get().ofDevice()) {
            if (r.mode() != null && !r.mode().equals(listed.get().mode()))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "kind " + r.kind() + " and mode " + r.mode() + " disagree",
                        Map.of("field", "mode"));
            return listed.get();
        }
        return switch (r.kind()) {
            case "shm" -> {
                if (r.mode() != null)
                    throw new OperationRefused(ProblemType.INVALID_PARAMETER, "shm has no mode (the bus always listens); leave out \"mode\"",
                            Map.of("field", "mode"));
                yield ExposureKind.SHM;
            }
            case "vhost-user" -> ExposureKind.of("vhost-user", r.mode() == null ? "server" : r.mode()).orElseThrow(() ->
                    new OperationRefused(ProblemType.INVALID_PARAMETER, "mode '" + r.mode() + "' is neither server (the bus listens, "
                            + "the front-end connects) nor client (the front-end listens, the bus connects)", Map.of("field", "mode")));
            default -> throw new OperationRefused(ProblemType.INVALID_PARAMETER, "unknown kind '" + r.kind()
                    + "'; the kinds are shm (a container, for host processes) and vhost-user (a virtio device, for QEMU or DPDK)",
                    Map.of("field", "kind"));
        };
    }

    private Exposure require(String id) {
        return changes.bus().exposure(id).orElseThrow(() -> new OperationRefused(ProblemType.NO_SUCH_EXPOSURE,
                "no such exposure '" + id + "'; this bus has " + changes.bus().exposures().stream().map(Exposure::id).toList()));
    }

    private static OperationRefused alreadyExposed(String what, Exposure there) {
        var i = there.info();
        return new OperationRefused(ProblemType.ALREADY_EXPOSED, what + " is already exposed as " + i.id() + " on " + i.socket()
                + (there.devid().isPresent() ? " (a device has one front-end at a time)" : "") + "; close that exposure first",
                Map.of("exposure", i.id()));
    }

    private static ExposureView view(Exposure e, Container c) {
        return ExposureView.of(e.info(), id -> {
            try {
                return Optional.of(c.device(id));
            } catch (NoSuchDeviceException gone) {
                return Optional.empty();
            }
        });
    }

    static String path(String id) {
        return "/api/v1/exposures/" + id;
    }
}
