package dev.jvbus.app.service;

import io.swagger.v3.oas.annotations.media.Schema;
import tools.jackson.databind.JsonNode;

/**
 * A migration as an operator asks for it: the other bus's API base URL ({@code to}), how to log in
 * there ({@code credentials}: a user and password for HTTP Basic, or a bearer token), the container
 * there (default: the same name as here), the restore overrides there (as for a restore), and how long
 * to wait for the driver to come back on the target before giving up and resuming here (default 60 s).
 */
public record MigrateRequest(String to, Credentials credentials, String container,
                             @Schema(type = "object", description = "the restore overrides on the target") JsonNode overrides,
                             Integer driverTimeoutSeconds) {

    /** Credentials on the target bus; never shown back (the record's text hides them). */
    public record Credentials(String user, String password, String token) {
        @Override
        public String toString() {
            return "Credentials[" + (token != null ? "bearer token" : "user " + user) + "]";
        }
    }
}
