package dev.jvbus.app.store;

import dev.jvbus.connector.shm.server.ContainerSocket;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * The kinds of exposure the management plane opens, in the operator's words: a connector
 * ({@code shm}, {@code vhost-user}) and, for vhost-user, a mode ({@code server}: we listen;
 * {@code client}: the front-end listens). The one place that ties those words to the word each
 * connector lists its exposures under ({@link dev.jvbus.core.bus.ExposureInfo#kind()}), which is
 * also the prefix of their ids.
 */
public enum ExposureKind {
    SHM("shm", null, ContainerSocket.KIND),
    VHOST_USER_SERVER("vhost-user", "server", VhostUserBackend.Mode.SERVER.kind()),
    VHOST_USER_CLIENT("vhost-user", "client", VhostUserBackend.Mode.CLIENT.kind());

    private final String connector;
    private final String mode;
    private final String listed;

    ExposureKind(String connector, String mode, String listed) {
        this.connector = connector;
        this.mode = mode;
        this.listed = listed;
    }

    /** {@code shm} or {@code vhost-user}. */
    public String connector() { return connector; }

    /** {@code server} or {@code client} for vhost-user; null for shm, which has no mode. */
    public String mode() { return mode; }

    /** What the connector lists it as: {@code shm}, {@code vhost-user-server}, {@code vhost-user-client}. */
    public String listed() { return listed; }

    /** Whether it exposes one device (vhost-user) rather than a whole container (shm). */
    public boolean ofDevice() { return this != SHM; }

    /** The kind a connector listed, if it is one the management plane knows. */
    public static Optional<ExposureKind> byListed(String listed) {
        return Arrays.stream(values()).filter(k -> k.listed.equals(listed)).findFirst();
    }

    /** The kind for a connector and mode, as the store and the API name them. */
    public static Optional<ExposureKind> of(String connector, String mode) {
        return Arrays.stream(values()).filter(k -> k.connector.equals(connector) && Objects.equals(k.mode, mode)).findFirst();
    }
}
