package dev.jvbus.app.service;

import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.core.state.StateFormatException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The state document a snapshot returns and a restore takes: the device's saved state (the bus's own
 * {@link StateCodec} JSON, {@code STATE-FORMAT.md}) in a versioned envelope that says who wrote it and
 * what is in it, checked by a checksum:
 * <pre>
 * {"format": "jvbus.snapshot", "version": 1,
 *  "bus": {"version": "0.1.0"},                       which jvbus wrote it (from its build)
 *  "takenAt": "...", "source": {"container": "c", "devid": 3},
 *  "device": {"type": "virtio-net", "stateVersion": 2,
 *             "model": {"type": "virtio-net", "stateVersion": 1},
 *             "status": [...], "features": {"negotiated": [...], "limited": [...]},
 *             "parameters": {...}},                   what the state holds, by name, for people and scripts
 *  "downtimeMicros": 812, "paused": false,
 *  "checksum": {"algorithm": "SHA-256", "value": "..."},
 *  "state": {"format": "jvbus.device-state", "version": 2, "device": {...}}}
 * </pre>
 * The checksum is SHA-256 over the canonical bytes of {@code state}: its JSON with every object's
 * members sorted by name and no spaces, so it does not depend on how a tool re-indented or reordered
 * the document on its way. Only {@code state} is restored from; the {@code device} part describes it.
 * Reading is strict and says where a document is wrong as a JSON pointer ({@code where}).
 * ANY CHANGE to the envelope bumps {@link #VERSION}.
 */
public final class SnapshotDocument {
    public static final String FORMAT = "jvbus.snapshot";
    public static final int VERSION = 1;
    public static final String ALGORITHM = "SHA-256";

    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Set<String> MEMBERS = Set.of("format", "version", "bus", "takenAt", "source", "device",
            "downtimeMicros", "paused", "checksum", "state");

    private SnapshotDocument() { }

    /**
     * Writes the document of {@code state}, saved from container {@code container} by jvbus {@code busVersion}.
     *
     * @param catalog the device model's feature names
     * @param downtimeNanos how long the device was quiesced (so far, when it stays paused)
     */
    public static ObjectNode write(DeviceState state, String container, FeatureCatalog catalog, String busVersion,
                                   long downtimeNanos, boolean paused) {
        JsonNode stateNode = JSON.readTree(StateCodec.encode(state));
        ObjectNode doc = JSON.createObjectNode();
        doc.put("format", FORMAT);
        doc.put("version", VERSION);
        doc.putObject("bus").put("version", busVersion);
        doc.put("takenAt", Instant.now().toString());
        ObjectNode source = doc.putObject("source");
        source.put("container", container);
        source.put("devid", Integer.toUnsignedLong(state.devid()));
        ObjectNode device = doc.putObject("device");
        device.put("type", state.type());
        device.put("stateVersion", StateCodec.CURRENT_VERSION);
        ObjectNode model = device.putObject("model");
        model.put("type", state.model().schema().type());
        model.put("stateVersion", state.model().schema().version());
        ArrayNode status = device.putArray("status");
        DeviceStatus.names(state.status()).forEach(status::add);
        ObjectNode features = device.putObject("features");
        ArrayNode negotiated = features.putArray("negotiated");
        catalog.names(state.negotiated()).forEach(negotiated::add);
        ArrayNode limited = features.putArray("limited");
        catalog.names(catalog.mask() & ~state.limit()).forEach(limited::add);
        ObjectNode params = device.putObject("parameters");
        new TreeMap<>(state.params()).forEach(params::put);
        doc.put("downtimeMicros", downtimeNanos / 1_000);
        doc.put("paused", paused);
        ObjectNode checksum = doc.putObject("checksum");
        checksum.put("algorithm", ALGORITHM);
        checksum.put("value", checksum(stateNode));
        doc.set("state", stateNode);
        return doc;
    }

    /** The state's JSON as a document carries it ({@code state}): what a checksum covers. */
    public static JsonNode stateJson(DeviceState state) {
        return JSON.readTree(StateCodec.encode(state));
    }

    /** A document read and checked: who wrote it and the state it carries. */
    public record Read(String writtenBy, DeviceState state) { }

    /**
     * Reads and checks a document: its format and version, the checksum against the state, then the
     * state itself with this bus's models (a type this bus has no model for, a newer state version, a
     * missing or unknown field are each refused by name).
     *
     * @throws OperationRefused MALFORMED_DOCUMENT with {@code where} (a JSON pointer), or
     *         UNSUPPORTED_VERSION for a document or state newer (or older) than this bus reads,
     *         UNKNOWN_DEVICE_TYPE for a model this bus does not have
     */
    public static Read read(JsonNode doc, DeviceModels models) {
        return read(doc, models, "");
    }

    /** As {@link #read(JsonNode, DeviceModels)}, for a document found at {@code at} (a JSON pointer) in a request. */
    public static Read read(JsonNode doc, DeviceModels models, String at) {
        if (doc == null || !doc.isObject()) throw malformed(at, "a snapshot document is a JSON object");
        if (!FORMAT.equals(doc.path("format").asString(null)))
            throw malformed(at + "/format", "not a jvbus snapshot document (expected \"format\": \"" + FORMAT + "\")");
        JsonNode v = doc.get("version");
        if (v == null || !v.isIntegralNumber()) throw malformed(at + "/version", "the document has no integer \"version\"");
        if (v.asInt() != VERSION)
            throw new OperationRefused(ProblemType.UNSUPPORTED_VERSION, "snapshot document version " + v.asInt() + " written by jvbus "
                    + doc.path("bus").path("version").asString("(unknown)") + "; this bus reads version " + VERSION,
                    Map.of("where", at + "/version"));
        for (String name : doc.propertyNames())
            if (!MEMBERS.contains(name))
                throw malformed(at + "/" + name, "unknown member '" + name + "' (a version " + VERSION + " document has "
                        + new java.util.TreeSet<>(MEMBERS) + ")");
        String writtenBy = doc.path("bus").path("version").asString(null);
        if (writtenBy == null) throw malformed(at + "/bus/version", "the document does not say which jvbus wrote it");
        JsonNode state = doc.get("state");
        if (state == null || !state.isObject()) throw malformed(at + "/state", "the document has no \"state\" object");
        JsonNode sum = doc.get("checksum");
        if (sum == null || !sum.isObject()) throw malformed(at + "/checksum", "the document has no \"checksum\" object");
        if (!ALGORITHM.equals(sum.path("algorithm").asString(null)))
            throw malformed(at + "/checksum/algorithm", "the checksum algorithm must be " + ALGORITHM);
        String value = sum.path("value").asString(null);
        if (value == null) throw malformed(at + "/checksum/value", "the checksum has no \"value\"");
        String actual = checksum(state);
        if (!actual.equalsIgnoreCase(value))
            throw malformed(at + "/checksum/value", "the checksum does not match the state (" + ALGORITHM + " " + actual
                    + "): the document was changed or damaged after it was written");
        String type = state.path("device").path("type").asString(null);
        if (type != null && models.model(type).isEmpty())
            throw new OperationRefused(ProblemType.UNKNOWN_DEVICE_TYPE, "the snapshot is of a " + type + " device, a model this bus does not have"
                    + " (it has " + models.types() + ")", Map.of("where", at + "/state/device/type"));
        return new Read(writtenBy, decodeState(state, models, at + "/state", writtenBy));
    }

    /**
     * The device state in {@code state} (a document's, or one a restore completion patched together), decoded with
     * this bus's models; refused as {@link #read} refuses, {@code where} pointing below {@code at}.
     */
    static DeviceState decodeState(JsonNode state, DeviceModels models, String at, String writtenBy) {
        try {
            return StateCodec.decode(canonical(state), models::stateSchema);
        } catch (StateFormatException e) {
            String msg = e.getMessage();
            if (msg.contains("newer than") || msg.contains("too old"))
                throw new OperationRefused(ProblemType.UNSUPPORTED_VERSION, "the device state " + msg + " (written by jvbus " + writtenBy + ")",
                        Map.of("where", at + "/version"));
            throw malformed(at + pointer(e), msg);
        }
    }

    /** Where inside the state the codec found it wrong, as a JSON pointer below {@code /state}. */
    private static String pointer(StateFormatException e) {
        if (!(e.getCause() instanceof JacksonException j) || j.getPath() == null || j.getPath().isEmpty()) return "";
        StringBuilder p = new StringBuilder("/device");
        for (var ref : j.getPath()) {
            if (ref.getPropertyName() != null) p.append('/').append(ref.getPropertyName().replace("~", "~0").replace("/", "~1"));
            else if (ref.getIndex() >= 0) p.append('/').append(ref.getIndex());
        }
        return p.toString();
    }

    private static OperationRefused malformed(String where, String why) {
        return new OperationRefused(ProblemType.MALFORMED_DOCUMENT, why + " (at " + (where.isEmpty() ? "/" : where) + ")",
                Map.of("where", where.isEmpty() ? "/" : where));
    }

    /** SHA-256, in hex, over the canonical bytes of {@code state}. */
    public static String checksum(JsonNode state) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(ALGORITHM).digest(canonical(state)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has " + ALGORITHM, e);
        }
    }

    /** The JSON of {@code node} with every object's members sorted by name, without spaces. */
    public static byte[] canonical(JsonNode node) {
        return JSON.writeValueAsBytes(sorted(node));
    }

    private static JsonNode sorted(JsonNode node) {
        if (node.isObject()) {
            ObjectNode out = JSON.createObjectNode();
            List<String> names = new ArrayList<>(node.propertyNames());
            names.sort(null);
            for (String n : names) out.set(n, sorted(node.get(n)));
            return out;
        }
        if (node.isArray()) {
            ArrayNode out = JSON.createArrayNode();
            for (JsonNode e : node) out.add(sorted(e));
            return out;
        }
        return node;
    }
}
