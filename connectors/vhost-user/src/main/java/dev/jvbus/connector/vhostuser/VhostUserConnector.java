package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.FdStat;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Objects;

/**
 * The vhost-user connector: makes a device reachable by a vhost-user front-end (QEMU, DPDK) as an
 * {@link dev.jvbus.core.bus.Exposure}, listed in the device's container's exposures. Server mode
 * listens on {@code <runtime dir>/<container>-<devid>-<type>.vhost-user.sock} (or a path of the
 * operator's); client mode connects to a socket the front-end listens on. Each exposure is a
 * {@link VhostUserBackend}; the bus closes it when the device is removed or its container destroyed.
 *
 * <pre>{@code
 * VhostUserConnector vu = new VhostUserConnector(Path.of("/run/jvbus"));
 * VhostUserBackend srv = vu.serve(device);                                  // vhost-user-server, LISTENING
 * VhostUserBackend cli = vu.connect(other, Path.of("/run/qemu/net1.sock"));  // vhost-user-client, RECONNECTING
 * container.exposures().infos();                                            // both, with state and sessions
 * }</pre>
 */
public final class VhostUserConnector {
    private final Path runtimeDirectory;
    private final VhostUserLimits limits;

    /** A connector with the default {@link VhostUserLimits}. */
    public VhostUserConnector(Path runtimeDirectory) {
        this(runtimeDirectory, VhostUserLimits.DEFAULTS);
    }

    /**
     * A connector whose sessions keep to {@code limits}. The runtime directory is created 0700 if missing.
     */
    public VhostUserConnector(Path runtimeDirectory, VhostUserLimits limits) {
        this.runtimeDirectory = runtimeDirectory.toAbsolutePath();
        this.limits = Objects.requireNonNull(limits, "limits");
        try {
            Files.createDirectories(this.runtimeDirectory, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the runtime directory " + this.runtimeDirectory, e);
        }
    }

    public Path runtimeDirectory() { return runtimeDirectory; }

    public VhostUserLimits limits() { return limits; }

    /** Where {@link #serve(Device)} puts a device's socket. */
    public Path socketPath(Device device) {
        return runtimeDirectory.resolve(device.container() + "-" + device.devid() + "-" + device.type() + ".vhost-user.sock");
    }

    /** Serves {@code device} in server mode on its socket in the runtime directory. */
    public VhostUserBackend serve(Device device) {
        return serve(device, socketPath(device));
    }

    /**
     * Serves {@code device} in server mode on {@code socket} (created 0600). A socket file left there (by
     * an earlier run) is replaced; any other kind of file is refused.
     *
     * @throws BusException if the device was removed, or {@code socket} is not a socket
     */
    public VhostUserBackend serve(Device device, Path socket) {
        replaceLeftover(socket);
        return VhostUserBackend.serve(device, socket, limits);
    }

    /** Serves {@code device} in client mode: connects to the front-end listening on {@code socket}, again after every disconnect. */
    public VhostUserBackend connect(Device device, Path socket) {
        return VhostUserBackend.connect(device, socket, limits);
    }

    private static void replaceLeftover(Path socket) {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) return;
        FdStat.Kind kind = FdStat.ofPath(socket).kind();
        if (kind != FdStat.Kind.SOCKET)
            throw new BusException(socket + " exists and is a " + kind + ", not a socket; refusing to replace it");
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the old socket " + socket, e);
        }
    }
}
