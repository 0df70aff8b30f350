package dev.jvbus.app.service;

import io.swagger.v3.oas.annotations.media.Schema;
import tools.jackson.databind.JsonNode;

/**
 * A migration as an operator asks for it: the other bus ({@code to}: the name or API base URL of a
 * target configured on this bus, {@link MigrationTargets}, which also holds the credential to log in
 * there), the container there (default: the same name as here), the restore overrides there (as for a
 * restore), and how long to wait for the driver to come back on the target before giving up and
 * resuming here (default 60 s). {@code credentials} are refused: they come from configuration only.
 */
public record MigrateRequest(@Schema(description = "a configured migration target's name or API base URL") String to,
                             @Schema(hidden = true) Credentials credentials, String container,
                             @Schema(type = "object", description = "the restore overrides on the target") JsonNode overrides,
                             Integer driverTimeoutSeconds) {

    /** Credentials in a request, refused (they come from configuration); never shown back (the record's text hides them). */
    public record Credentials(String user, String password, String token) {
        @Override
        public String toString() {
            return "Credentials[" + (token != null ? "bearer token" : "user " + user) + "]";
        }
    }
}
