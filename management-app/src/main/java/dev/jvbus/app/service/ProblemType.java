package dev.jvbus.app.service;

import java.net.URI;

/**
 * Every way an operation can be refused, with the HTTP status and the stable problem type URI
 * (RFC 9457) that the REST API, the console and the shell show. A script may rely on the slug.
 */
public enum ProblemType {
    NO_SUCH_CONTAINER(404, "No such container"),
    NO_SUCH_DEVICE(404, "No such device"),
    NO_SUCH_NETWORK(404, "No such network"),
    NO_SUCH_PORT(404, "No such port"),
    NO_SUCH_NAMESPACE(422, "No such network namespace"),
    NO_SUCH_TOKEN(404, "No such token"),
    NO_SUCH_EXPOSURE(404, "No such exposure"),
    NO_SUCH_MICROVM(404, "No such micro-VM"),
    KVM_UNAVAILABLE(503, "KVM is not usable on this host"),
    ALREADY_EXPOSED(409, "Already exposed"),
    KIND_NOT_APPLICABLE(422, "Exposure kind does not apply"),
    SOCKET_PATH_NOT_ALLOWED(422, "Socket path not allowed"),
    NAME_TAKEN(409, "Name already used"),
    INVALID_NAME(400, "Invalid name"),
    UNKNOWN_DEVICE_TYPE(400, "Unknown device type"),
    UNKNOWN_FEATURE(400, "Unknown feature"),
    INVALID_PARAMETER(400, "Invalid parameter"),
    FEATURE_NOT_NEGOTIABLE(422, "Feature cannot be negotiated"),
    NETWORK_IN_USE(409, "Network still has ports"),
    DEVICE_BUSY(409, "Device busy in an operation"),
    LIMIT_REACHED(409, "Limit reached"),
    MALFORMED_DOCUMENT(400, "Malformed document"),
    UNSUPPORTED_VERSION(422, "Document version not read by this bus"),
    NO_SUCH_OPERATION(404, "No such operation"),
    OPERATION_CANCELLED(409, "Operation cancelled"),
    NOT_READY(409, "Not ready"),
    TARGET_FAILED(502, "The target bus refused or failed"),
    /** A migration lost its target after asking it to start the device: where the device runs is not known. */
    OUTCOME_UNKNOWN(504, "Migration outcome unknown"),
    UNKNOWN_TARGET(422, "Not a configured migration target"),
    REFUSED(409, "Refused by the bus"),
    UNAUTHENTICATED(401, "Credentials needed"),
    FORBIDDEN(403, "Not allowed for this user's role");

    /** Where the problem types live; each slug is documented in the API's OpenAPI description. */
    public static final String BASE = "https://jvbus.dev/problems/";

    private final int status;
    private final String title;

    ProblemType(int status, String title) {
        this.status = status;
        this.title = title;
    }

    public int status() { return status; }

    /** The type's last path segment, its constant's name in kebab case: NO_SUCH_DEVICE is no-such-device. */
    public String slug() { return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-'); }

    public String title() { return title; }

    public URI uri() { return URI.create(BASE + slug()); }
}
