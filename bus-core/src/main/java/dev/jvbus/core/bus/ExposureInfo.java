package dev.jvbus.core.bus;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What listing shows of an {@link Exposure}: an immutable snapshot.
 *
 * @param id        unique within the bus, never reused while the bus lives (e.g. {@code shm-1})
 * @param kind      the connector's name for how it exposes (e.g. {@code shm}, {@code vhost-user-server},
 *                  {@code vhost-user-client}); bus-core knows no connector, so it is the connector's word
 * @param container the container it exposes, or the container of the device it exposes
 * @param devid     the device it exposes, or empty when it exposes the whole container
 * @param socket    the AF_UNIX socket path it listens on (server) or connects to (client)
 * @param state     where it is in its life
 * @param sessions  its live sessions, oldest first; empty unless {@link ExposureState#CONNECTED}
 */
public record ExposureInfo(String id, String kind, String container, Optional<DevId> devid, Path socket,
                           ExposureState state, List<SessionInfo> sessions) {
    public ExposureInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(container, "container");
        Objects.requireNonNull(devid, "devid");
        Objects.requireNonNull(socket, "socket");
        Objects.requireNonNull(state, "state");
        sessions = List.copyOf(sessions);
    }
}
