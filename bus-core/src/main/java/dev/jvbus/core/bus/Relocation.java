package dev.jvbus.core.bus;

import java.util.Objects;

/**
 * Where a device is being moved to, as its driver is told ({@link Device#announceMove}): the other
 * bus (its management API base URL, for a person and for logs), the container and devid it has there,
 * and the endpoint its driver reconnects to there, in the connector's own terms (for the shm connector
 * the container's socket path on that bus). The device here stays the driver's until the move ends:
 * it is released (unplugged) once the other bus runs it, or resumes here if the move fails.
 */
public record Relocation(String bus, String container, DevId devid, String endpoint) {
    public Relocation {
        Objects.requireNonNull(bus, "bus");
        Objects.requireNonNull(container, "container");
        Objects.requireNonNull(devid, "devid");
        Objects.requireNonNull(endpoint, "endpoint");
    }
}
