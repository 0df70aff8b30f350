package dev.jvbus.connector.shm.server;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import java.nio.file.Path;
import java.util.List;
import dev.jvbus.core.bus.ExposureState;
import java.util.ArrayList;
import java.util.Optional;
import java.util.concurrent.ThreadFactory;

/**
 * The shm connector: the native vbus protocol (PROTOCOL.md) for host processes, one AF_UNIX socket
 * per container at {@code <runtime dir>/<container>.sock}. The runtime directory is the operator's
 * choice; it is created 0700 if missing and refused if others could write it.
 *
 * <pre>{@code
 * ShmConnector shm = new ShmConnector(bus, Path.of("/run/jvbus"));
 * shm.expose("tenant-a");                                  // the bus's own uid only
 * shm.expose("tenant-b", AllowedPeers.uids(1001, 1002));  // other local users
 * bus.requireContainer("tenant-a").exposures().infos();   // [ExposureInfo[id=shm-1, kind=shm, state=LISTENING, ...]]
 * }</pre>
 *
 * <p>Each socket is an {@link dev.jvbus.core.bus.Exposure} in its container's exposures: listed there with
 * its state and sessions, closed there or here, and closed by the bus when the container is destroyed.
 */
public final class ShmConnector implements AutoCloseable {
    private final Bus bus;
    private final Path runtimeDirectory;
    private final ShmLimits limits;
    private final ThreadFactory sessionThreads;
    private final List<ContainerSocket> sockets = new ArrayList<>();   // guarded by this; closed ones are dropped lazily

    /** A connector with the default {@link ShmLimits}. */
    public ShmConnector(Bus bus, Path runtimeDirectory) {
        this(bus, runtimeDirectory, ShmLimits.DEFAULTS);
    }

    /** A connector whose sessions keep to {@code limits} (the operator's settings). */
    public ShmConnector(Bus bus, Path runtimeDirectory, ShmLimits limits) {
        this(bus, runtimeDirectory, limits, Thread.ofPlatform().daemon().factory());
    }

    /**
     * Tests: {@code sessionThreads} makes each session's thread (platform threads: a session sits in
     * a native recvmsg, which would pin a virtual thread's carrier anyway).
     */
    ShmConnector(Bus bus, Path runtimeDirectory, ShmLimits limits, ThreadFactory sessionThreads) {
        this.bus = bus;
        this.runtimeDirectory = RuntimeDirectory.prepare(runtimeDirectory);
        this.limits = java.util.Objects.requireNonNull(limits, "limits");
        this.sessionThreads = sessionThreads;
    }

    public ShmLimits limits() { return limits; }

    public Path runtimeDirectory() { return runtimeDirectory; }

    /** Where a container's socket is (or would be). */
    public Path socketPath(String container) {
        return runtimeDirectory.resolve(container + ".sock");
    }

    /** Opens a container's socket for the bus's own uid. */
    public ContainerSocket expose(String container) {
        return expose(container, AllowedPeers.busOwner());
    }

    /**
     * Opens a container's socket for the given uids: an {@link dev.jvbus.core.bus.Exposure} of kind
     * {@value ContainerSocket#KIND}, listed in the container's exposures until it is closed (by
     * {@link ContainerSocket#close()}, {@link #unexpose}, this connector's close, or the container's end).
     *
     * @throws BusException if the container does not exist, is already exposed here, or another bus serves the path
     */
    public synchronized ContainerSocket expose(String containerName, AllowedPeers allowed) {
        Container container = bus.requireContainer(containerName);
        if (socket(containerName).isPresent()) throw new BusException("container '" + containerName + "' is already exposed");
        Path path = socketPath(containerName);
        RuntimeDirectory.clearStaleSocket(path);
        ContainerSocket socket = container.exposures().expose(ContainerSocket.KIND,
                id -> ContainerSocket.open(id, container, path, allowed, limits, sessionThreads));
        sockets.add(socket);
        return socket;
    }

    /** The container's live socket opened by this connector, if any. */
    public synchronized Optional<ContainerSocket> socket(String container) {
        sockets.removeIf(s -> s.state() == ExposureState.CLOSED);
        return sockets.stream().filter(s -> s.container().equals(container)).findFirst();
    }

    /** Closes a container's socket and ends its sessions (their devices are reset and freed). */
    public void unexpose(String container) {
        socket(container).ifPresent(ContainerSocket::close);
    }

    /** Closes every socket this connector opened. (Closing the bus closes them too.) */
    @Override
    public void close() {
        List<ContainerSocket> all;
        synchronized (this) {
            all = List.copyOf(sockets);
            sockets.clear();
        }
        all.forEach(ContainerSocket::close);
    }
}
