package dev.jvbus.core.bus;

import java.util.Optional;

/**
 * A container, or one device of it, made reachable through a connector: an shm socket for host
 * processes, a vhost-user socket in server or client mode. Connectors implement it and register each
 * one in the container's {@link Exposures}, which gives it its id, lists it, and closes it when what
 * it exposes goes away (its device is removed, its container destroyed) or the bus closes.
 *
 * <p>An exposure is made live by its connector and ends once, with {@link #close()}: its sessions end
 * (each peer sees its connection hang up, the devices it drove are reset), its socket file is removed,
 * it leaves its registry, and from then on its state is {@link ExposureState#CLOSED}.
 */
public interface Exposure extends AutoCloseable {
    /** Unique within the bus; the registry hands it out (see {@link Exposures#expose}). */
    String id();

    /** The container it exposes, or the container of the device it exposes. */
    String container();

    /** The device it exposes, or empty when it exposes the whole container. */
    Optional<DevId> devid();

    /** A snapshot of its state and live sessions. */
    ExposureInfo info();

    default ExposureState state() {
        return info().state();
    }

    /**
     * Peers turned away for {@code reason} since the exposure opened. Counted by the connector's one
     * accepting (or connecting) thread as a plain field; read racily by metrics. By default none.
     */
    default long refused(SessionRefusal reason) {
        return 0;
    }

    /** Bytes of its peers' memory the exposure's live sessions have mapped now (for metrics). By default 0. */
    default long mappedBytes() {
        return 0;
    }

    /**
     * Bytes of its peers' memory still mapped after their sessions let it go, because a worker that may touch
     * it did not stop within its bound and has not left yet ({@code dev.jvbus.core.sys.MappingLifetime}). By default 0.
     */
    default long mappedForStuckWorkers() {
        return 0;
    }

    /** Ends every session, removes the socket and leaves the registry. Idempotent; never throws. */
    @Override
    void close();
}
