package dev.jvbus.app.service;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * What completes a restore prepared ahead of a migration's pause ({@code POST .../restore?prepare=N}): the source
 * saved the device's state while it still ran and the target restored it from that, paused and holding nothing;
 * at the pause the source sends only how the state saved then differs from the one it sent before:
 * <pre>
 * {"operation": "op-7",                                 the target's prepare operation (its Location)
 *  "base": "9f2c...",                                  the checksum of the state prepared from (stale: refused)
 *  "changes": {"device": {"queues": [...], ...}},      a JSON merge patch (RFC 7386) of that state's JSON
 *  "checksum": {"algorithm": "SHA-256", "value": "..."}}  of the whole state once patched, as a document's
 * </pre>
 * Usually the queues' positions, what the driver left in flight and the model's state: a small request in the
 * window where the device serves nowhere. The one place that reads that shape; a mistake is MALFORMED_DOCUMENT with
 * {@code where} as a JSON pointer.
 */
public record RestoreCompletion(String operation, String base, JsonNode changes, String checksum) {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Set<String> MEMBERS = Set.of("operation", "base", "changes", "checksum");

    public static RestoreCompletion parse(JsonNode body) {
        if (body == null || !body.isObject())
            throw RestoreRequest.malformed("/", "a restore completion is {\"operation\", \"base\", \"changes\", \"checksum\"}");
        for (String n : body.propertyNames())
            if (!MEMBERS.contains(n)) throw RestoreRequest.malformed("/" + n, "unknown member '" + n + "' (a completion has " + MEMBERS + ")");
        String op = text(body, "operation");
        String base = text(body, "base");
        JsonNode changes = body.get("changes");
        if (changes == null || !changes.isObject()) throw RestoreRequest.malformed("/changes", "\"changes\" is a JSON merge patch object of the state");
        JsonNode sum = body.get("checksum");
        if (sum == null || !sum.isObject() || !SnapshotDocument.ALGORITHM.equals(sum.path("algorithm").asString(null)))
            throw RestoreRequest.malformed("/checksum", "\"checksum\" is {\"algorithm\": \"" + SnapshotDocument.ALGORITHM + "\", \"value\": ...}");
        return new RestoreCompletion(op, base, changes, text(sum, "value", "/checksum/value"));
    }

    private static String text(JsonNode o, String name) {
        return text(o, name, "/" + name);
    }

    private static String text(JsonNode o, String name, String where) {
        JsonNode v = o.get(name);
        if (v == null || !v.isString() || v.asString().isBlank()) throw RestoreRequest.malformed(where, "\"" + name + "\" is a non-empty string");
        return v.asString();
    }

    /** The request's body: how {@code later} differs from {@code prepared} (both a state's JSON), checked as a whole. */
    public static ObjectNode body(String operation, String base, JsonNode prepared, JsonNode later) {
        ObjectNode b = JSON.createObjectNode();
        b.put("operation", operation);
        b.put("base", base);
        b.set("changes", diff(prepared, later));
        ObjectNode sum = b.putObject("checksum");
        sum.put("algorithm", SnapshotDocument.ALGORITHM);
        sum.put("value", SnapshotDocument.checksum(later));
        return b;
    }

    /**
     * The JSON merge patch (RFC 7386) that turns {@code from} into {@code to}: objects member by member, anything
     * else (arrays included) whole, a member {@code to} lacks as null. A state's JSON has no nulls of its own.
     */
    static ObjectNode diff(JsonNode from, JsonNode to) {
        ObjectNode patch = JSON.createObjectNode();
        for (String n : to.propertyNames()) {
            JsonNode a = from.get(n), b = to.get(n);
            if (a != null && a.equals(b)) continue;
            patch.set(n, a != null && a.isObject() && b.isObject() ? diff(a, b) : b.deepCopy());
        }
        List<String> gone = new ArrayList<>();
        for (String n : from.propertyNames()) if (!to.has(n)) gone.add(n);
        for (String n : gone) patch.putNull(n);
        return patch;
    }

    /** {@code patch} applied to a copy of {@code target} (RFC 7386). */
    public static JsonNode apply(JsonNode target, JsonNode patch) {
        if (!patch.isObject()) return patch.deepCopy();
        ObjectNode out = target != null && target.isObject() ? (ObjectNode) target.deepCopy() : JSON.createObjectNode();
        for (Map.Entry<String, JsonNode> e : patch.properties()) {
            if (e.getValue().isNull()) out.remove(e.getKey());
            else out.set(e.getKey(), apply(out.get(e.getKey()), e.getValue()));
        }
        return out;
    }
}
