package dev.jvbus.shell;

import tools.jackson.databind.JsonNode;

/**
 * The API refused: its RFC 9457 problem as the shell shows it, {@code "<detail> (<type>, HTTP <status>)"}.
 * A one-shot command exits with 1 for it.
 */
public final class Problem extends ShellRefusal {
    private final int status;
    private final String type;
    private final JsonNode document;

    Problem(int status, String type, String detail, JsonNode document) {
        super(detail + " (" + type + ", HTTP " + status + ")", 1);
        this.status = status;
        this.type = type;
        this.document = document;
    }

    /** From the problem document an answer carried (or, for a body that is not one, from the status alone). */
    static Problem of(int status, JsonNode body) {
        String t = body == null ? "" : body.path("type").asString("");
        String slug = t.isEmpty() ? "http-" + status : t.substring(t.lastIndexOf('/') + 1);
        String detail = body == null ? "" : body.path("detail").asString(body.path("title").asString(""));
        if (detail.isEmpty()) detail = "the bus answered HTTP " + status;
        return new Problem(status, slug, detail, body);
    }

    public int status() { return status; }

    /** The problem type's slug ({@code no-such-container}), the last segment of its type URI. */
    public String type() { return type; }

    public JsonNode document() { return document; }
}
