package dev.jvbus.app.service;

import java.net.URI;

/**
 * Every way an operation can be refused, with the HTTP status and the stable problem type URI
 * (RFC 9457) that the REST API, the console and the shell show. A script may rely on the slug.
 */
public enum ProblemType {
    NO_SUCH_CONTAINER(404, "no-such-container", "No such container"),
    NO_SUCH_DEVICE(404, "no-such-device", "No such device"),
    NO_SUCH_NETWORK(404, "no-such-network", "No such network"),
    NO_SUCH_PORT(404, "no-such-port", "No such port"),
    NO_SUCH_NAMESPACE(422, "no-such-namespace", "No such network namespace"),
    NO_SUCH_TOKEN(404, "no-such-token", "No such token"),
    NO_SUCH_EXPOSURE(404, "no-such-exposure", "No such exposure"),
    ALREADY_EXPOSED(409, "already-exposed", "Already exposed"),
    KIND_NOT_APPLICABLE(422, "kind-not-applicable", "Exposure kind does not apply"),
    SOCKET_PATH_NOT_ALLOWED(422, "socket-path-not-allowed", "Socket path not allowed"),
    NAME_TAKEN(409, "name-taken", "Name already used"),
    INVALID_NAME(400, "invalid-name", "Invalid name"),
    UNKNOWN_DEVICE_TYPE(400, "unknown-device-type", "Unknown device type"),
    UNKNOWN_FEATURE(400, "unknown-feature", "Unknown feature"),
    INVALID_PARAMETER(400, "invalid-parameter", "Invalid parameter"),
    FEATURE_NOT_NEGOTIABLE(422, "feature-not-negotiable", "Feature cannot be negotiated"),
    NETWORK_IN_USE(409, "network-in-use", "Network still has ports"),
    DEVICE_BUSY(409, "device-busy", "Device busy in an operation"),
    LIMIT_REACHED(409, "limit-reached", "Limit reached"),
    MALFORMED_DOCUMENT(400, "malformed-document", "Malformed document"),
    UNSUPPORTED_VERSION(422, "unsupported-version", "Document version not read by this bus"),
    NO_SUCH_OPERATION(404, "no-such-operation", "No such operation"),
    OPERATION_CANCELLED(409, "operation-cancelled", "Operation cancelled"),
    NOT_READY(409, "not-ready", "Not ready"),
    TARGET_FAILED(502, "target-failed", "The target bus refused or failed"),
    REFUSED(409, "refused", "Refused by the bus"),
    UNAUTHENTICATED(401, "unauthenticated", "Credentials needed"),
    FORBIDDEN(403, "forbidden", "Not allowed for this user's role");

    /** Where the problem types live; each slug is documented in the API's OpenAPI description. */
    public static final String BASE = "https://jvbus.dev/problems/";

    private final int status;
    private final String slug;
    private final String title;

    ProblemType(int status, String slug, String title) {
        this.status = status;
        this.slug = slug;
        this.title = title;
    }

    public int status() { return status; }

    public String slug() { return slug; }

    public String title() { return title; }

    public URI uri() { return URI.create(BASE + slug); }
}
