package dev.jvbus.core.state;

import java.lang.reflect.RecordComponent;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonGenerator;
import tools.jackson.core.JsonParser;
import tools.jackson.databind.DeserializationContext;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.SerializationContext;
import tools.jackson.databind.ValueDeserializer;
import tools.jackson.databind.ValueSerializer;
import tools.jackson.databind.exc.UnrecognizedPropertyException;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.module.SimpleModule;
import tools.jackson.databind.node.ObjectNode;

/**
 * Encodes {@link DeviceState} for migration and snapshots: JSON in a versioned envelope
 * <pre>{"format":"jvbus.device-state","version":2,"device":{..., "model":{"type":"venet","version":1, ...}}}</pre>
 * The envelope is read before the body, so a state written by a newer (or much older) jvbus is
 * refused by name instead of being half-understood. The model's part carries its own type name and
 * version ({@link ModelStateSchema}) and is read into the model's own record. Unknown or missing
 * fields are refused by name, in the body and in the model's part alike: they mean the writer and
 * reader disagree about the format, and guessing would corrupt a live guest.
 */
public final class StateCodec {
    public static final String FORMAT = "jvbus.device-state";
    /**
     * Bump on any change to {@link DeviceState} or {@link QueueState}; keep reading older versions or
     * refuse them by name. 2: the model's state became a typed, versioned record of the model's own
     * (in 1 it was a map of strings, read with defaults).
     */
    public static final int CURRENT_VERSION = 2;
    /** Version 1's model state was an untyped map whose missing keys defaulted silently; it is not guessed into a record. */
    public static final int OLDEST_READABLE_VERSION = 2;

    /** Deserialization attribute: the schema the device's model state is read with. */
    private static final Object MODEL_SCHEMA = new Object();

    private static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .addModule(new SimpleModule("jvbus-model-state")
                    .addSerializer(ModelState.class, new ModelStateWriter())
                    .addDeserializer(ModelState.class, new ModelStateReader()))
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
     * @param schemas how to read each device type's model state ({@code bus.models()::stateSchema})
     * @throws StateFormatException naming what is wrong: not a device state, a version this bus does
     *         not read (newer or too old), a device type this bus has no model for, or content that does
     *         not match the version (a missing or unknown field, by name)
     */
    public static DeviceState decode(byte[] bytes, ModelStateSchemas schemas) {
        Objects.requireNonNull(schemas, "schemas");
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
        if (!v.canConvertToInt())   // asInt() would throw Jackson's own exception: no jvbus wrote such a version
            throw new StateFormatException("device state version " + v + " is not one this jvbus understands (it reads "
                    + readable() + ")");
        int version = v.asInt();
        if (version > CURRENT_VERSION)
            throw new StateFormatException("device state version " + version + " is newer than this jvbus understands (it reads "
                    + readable() + "); upgrade jvbus on this side before restoring");
        if (version < OLDEST_READABLE_VERSION)
            throw new StateFormatException("device state version " + version + " is too old for this jvbus (it reads "
                    + readable() + ")" + (version == 1 ? ": version 1 kept the model's state as untyped strings; save the device"
                    + " again with a jvbus that writes version " + OLDEST_READABLE_VERSION : ""));
        JsonNode body = root.get("device");
        if (body == null || !body.isObject()) throw new StateFormatException("device state has no \"device\" object");
        String type = body.path("type").asString(null);
        if (type == null) throw new StateFormatException("device state version " + version + " is damaged: missing field 'type'");
        ModelStateSchema<?> schema = schemas.forDeviceType(type).orElseThrow(() -> new StateFormatException(
                "device state of type '" + type + "': this bus has no such device model to read its state"));
        try {
            return MAPPER.readerFor(DeviceState.class).withAttribute(MODEL_SCHEMA, schema).readValue(body);
        } catch (JacksonException e) {
            throw new StateFormatException("device state version " + version + " is damaged: " + describe(e), e);
        } catch (IllegalArgumentException | NullPointerException e) {
            throw new StateFormatException("device state version " + version + " is damaged: " + e.getMessage(), e);
        }
    }

    public static DeviceState decode(String json, ModelStateSchemas schemas) {
        return decode(json.getBytes(StandardCharsets.UTF_8), schemas);
    }

    private static String readable() {
        return OLDEST_READABLE_VERSION == CURRENT_VERSION ? "version " + CURRENT_VERSION
                : "versions " + OLDEST_READABLE_VERSION + ".." + CURRENT_VERSION;
    }

    private static final Pattern MISSING = Pattern.compile("Missing (?:required )?creator property '([^']+)'");

    /** Jackson's words for the two mistakes a hand-edited or mismatched file makes most, said with the field's name. */
    private static String describe(JacksonException e) {
        if (e instanceof UnrecognizedPropertyException u) {
            List<String> known = new ArrayList<>();
            if (u.getKnownPropertyIds() != null) for (Object k : u.getKnownPropertyIds()) known.add(String.valueOf(k));
            return "unknown field '" + u.getPropertyName() + "' in " + u.getReferringClass().getSimpleName()
                    + (known.isEmpty() ? " (it has no fields)" : " (it has: " + String.join(", ", known.stream().sorted().toList()) + ")");
        }
        String m = e.getOriginalMessage();
        Matcher missing = MISSING.matcher(m);
        if (missing.find()) return "missing field '" + missing.group(1) + "' in " + where(e);
        return m;
    }

    /** The record a path ends in, as the reader knows it ("QueueState", "VenetState"). */
    private static String where(JacksonException e) {
        var path = e.getPath();
        for (int i = path.size() - 1; i >= 0; i--) {
            Object from = path.get(i).from();
            if (from instanceof Class<?> c) return c.getSimpleName();
            if (from != null && !(from instanceof List<?>)) return from.getClass().getSimpleName();
        }
        return "DeviceState";
    }

    /** Writes a model's state as {"type": ..., "version": ..., then each record component}. */
    private static final class ModelStateWriter extends ValueSerializer<ModelState> {
        @Override
        public void serialize(ModelState state, JsonGenerator gen, SerializationContext ctxt) {
            ModelStateSchema<?> schema = state.schema();
            if (!schema.recordClass().isInstance(state))
                throw new IllegalStateException(state.getClass().getName() + " is not the record of its own schema " + schema);
            gen.writeStartObject();
            gen.writeStringProperty("type", schema.type());
            gen.writeNumberProperty("version", schema.version());
            for (RecordComponent c : state.getClass().getRecordComponents()) {
                Object value;
                try {
                    value = c.getAccessor().invoke(state);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot read " + schema + " field '" + c.getName() + "'", e);
                }
                gen.writeName(c.getName());
                ctxt.writeValue(gen, value);
            }
            gen.writeEndObject();
        }
    }

    /** Reads a model's state with the schema its device type's model gives, strictly. */
    private static final class ModelStateReader extends ValueDeserializer<ModelState> {
        @Override
        public ModelState deserialize(JsonParser p, DeserializationContext ctxt) {
            ModelStateSchema<?> schema = (ModelStateSchema<?>) ctxt.getAttribute(MODEL_SCHEMA);
            JsonNode node = ctxt.readTree(p);
            if (!(node instanceof ObjectNode fields))
                return ctxt.reportInputMismatch(this, "the model state is not an object");
            JsonNode type = fields.remove("type");
            JsonNode version = fields.remove("version");
            if (type == null) return ctxt.reportInputMismatch(this, "missing field 'type' in the model state");
            if (version == null) return ctxt.reportInputMismatch(this, "missing field 'version' in the model state");
            ModelStateSchema.Older<?> older = version.isIntegralNumber() && version.canConvertToInt()
                    ? schema.olderVersion(version.asInt()).orElse(null) : null;
            if (!type.isString() || !type.asString().equals(schema.type()) || !version.isIntegralNumber()
                    || version.asInt() != schema.version() && older == null)
                return ctxt.reportInputMismatch(this, "%s", "model state is " + type + " version " + version
                        + "; this bus reads " + schema.readable());
            try {
                if (older != null)   // a file written before the model's last bump: read as it was, then upgraded
                    return (ModelState) older.upgrade().apply(ctxt.readTreeAsValue(fields, older.recordClass()));
                return ctxt.readTreeAsValue(fields, schema.recordClass());
            } catch (JacksonException e) {
                return ctxt.reportInputMismatch(this, "%s", schema + ": " + describe(e));
            } catch (IllegalArgumentException e) {   // the record's own check of a value
                return ctxt.reportInputMismatch(this, "%s", schema + ": " + e.getMessage());
            }
        }
    }
}
