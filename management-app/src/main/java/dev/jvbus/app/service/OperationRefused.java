package dev.jvbus.app.service;

import java.util.Map;
import java.util.Objects;

/**
 * An operation the services refused, before or instead of changing anything: its type says which
 * rule, the message says what and why in words a person understands, and {@code where} names the
 * input that caused it (a field, a feature name, a path in a document) when there is one.
 */
public class OperationRefused extends RuntimeException {
    private final ProblemType type;
    private final Map<String, Object> where;

    public OperationRefused(ProblemType type, String message) {
        this(type, message, Map.of());
    }

    public OperationRefused(ProblemType type, String message, Map<String, Object> where) {
        super(message);
        this.type = Objects.requireNonNull(type);
        this.where = Map.copyOf(where);
    }

    public ProblemType type() { return type; }

    /** Extra members of the problem document, e.g. {@code field}, {@code features}. */
    public Map<String, Object> where() { return where; }
}
