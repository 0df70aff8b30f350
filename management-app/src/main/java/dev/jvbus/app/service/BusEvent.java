package dev.jvbus.app.service;

import java.time.Instant;
import java.util.Map;

/**
 * Something that happened on the bus, as the console's live view and the event stream show it:
 * {@code kind} is a stable name (container-created, device-added, device-removed, device-needs-reset,
 * network-created, network-deleted, exposure-created, exposure-closed, session-opened, session-closed),
 * {@code subject} the resource's API path, and {@code details}
 * what a reader needs without a second request.
 */
public record BusEvent(Instant at, String kind, String subject, Map<String, Object> details) {
    public BusEvent {
        details = Map.copyOf(details);
    }

    public static BusEvent now(String kind, String subject, Map<String, Object> details) {
        return new BusEvent(Instant.now(), kind, subject, details);
    }
}
