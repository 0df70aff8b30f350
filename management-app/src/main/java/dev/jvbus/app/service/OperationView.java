package dev.jvbus.app.service;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * A long operation (snapshot, restore, resume, migrate) as the API shows it at {@code /api/v1/operations/{id}}:
 * what it is ({@code kind}) and on what ({@code subject}, an API path), where it is ({@code state} and the
 * {@code steps} begun so far, the last one current while it runs), when, and how it ended: its
 * {@code result} when it succeeded, an RFC 9457 {@code problem} when it failed or was cancelled.
 */
public record OperationView(String id, String kind, String subject, State state, List<Step> steps,
                            Instant createdAt, Instant finishedAt, Object result, Map<String, Object> problem) {

    public enum State {
        RUNNING, SUCCEEDED, FAILED, CANCELLED;

        /** Lower case on the wire, as every other name the API shows. */
        @com.fasterxml.jackson.annotation.JsonValue
        public String wire() {
            return name().toLowerCase();
        }

        public boolean finished() {
            return this != RUNNING;
        }
    }

    /** One step of an operation: begun at {@code startedAt}, done at {@code finishedAt} (null while current). */
    public record Step(String name, Instant startedAt, Instant finishedAt) { }
}
