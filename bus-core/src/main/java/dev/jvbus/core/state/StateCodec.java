package dev.jvbus.core.state;

import java.nio.charset.StandardCharsets;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Encodes {@link DeviceState} for migration and snapshots: JSON in a versioned envelope
 * <pre>{"format":"jvbus.device-state","version":1,"device":{...}}</pre>
 * The envelope is read before the body, so a state written by a newer jvbus is refused by name
 * instead of being half-understood. Unknown fields in a known version are refused too: they mean
 * the writer and reader disagree about the format, and guessing would corrupt a live guest.
 */
public final class StateCodec {
    public static final String FORMAT = "jvbus.device-state";
    /** Bump on any change to {@link DeviceState} or {@link QueueState}; keep reading older versions or refuse them by name. */
    public static final int CURRENT_VERSION = 1;
    public static final int OLDEST_READABLE_VERSION = 1;

    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .build();

    private StateCodec() {}

    public static byte[] encode(DeviceState state) {
        var root = MAPPER.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", CURRENT_VERSION);
        root.set("device", MAPPER.valueToTree(state));
        return MAPPER.writeValueAsBytes(root);
    }

    public static String encodeToString(DeviceState state) {
        return new String(encode(state), StandardCharsets.UTF_8);
    }

    /**
     * @throws StateFormatException naming what is wrong: not a device state, a version this bus does
     *         not read (newer or too old), or content that does not match the version
     */
    public static DeviceState decode(byte[] bytes) {
        JsonNode root;
        try {
            root = MAPPER.readTree(bytes);
        } catch (JacksonException e) {
            throw new StateFormatException("saved device state is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject() || !FORMAT.equals(root.path("format").asString(null)))
            throw new StateFormatException("not a jvbus device state (expected \"format\": \"" + FORMAT + "\")");
        JsonNode v = root.get("version");
        if (v == null || !v.isIntegralNumber())
            throw new StateFormatException("device state has no integer \"version\"");
        int version = v.asInt();
        if (version > CURRENT_VERSION)
            throw new StateFormatException("device state version " + version + " is newer than this jvbus understands (it reads "
                    + OLDEST_READABLE_VERSION + ".." + CURRENT_VERSION + "); upgrade jvbus on this side before restoring");
        if (version < OLDEST_READABLE_VERSION)
            throw new StateFormatException("device state version " + version + " is too old for this jvbus (it reads "
                    + OLDEST_READABLE_VERSION + ".." + CURRENT_VERSION + ")");
        JsonNode body = root.get("device");
        if (body == null || !body.isObject()) throw new StateFormatException("device state has no \"device\" object");
        try {
            return MAPPER.treeToValue(body, DeviceState.class);
        } catch (JacksonException | IllegalArgumentException | NullPointerException e) {
            throw new StateFormatException("device state version " + version + " is damaged: " + messageOf(e), e);
        }
    }

    public static DeviceState decode(String json) {
        return decode(json.getBytes(StandardCharsets.UTF_8));
    }

    private static String messageOf(Exception e) {
        return e instanceof JacksonException je ? je.getOriginalMessage() : String.valueOf(e.getMessage());
    }
}
