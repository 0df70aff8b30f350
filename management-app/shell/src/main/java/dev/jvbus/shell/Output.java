package dev.jvbus.shell;

import java.util.function.Function;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.SerializationFeature;

/** What a command prints: the API's document as indented JSON with --json (for scripts), else the readable form. */
final class Output {
    private Output() { }

    static String of(boolean json, JsonNode doc, Function<JsonNode, Object> readable) {
        return json ? json(doc) : String.valueOf(readable.apply(doc));
    }

    static String json(JsonNode doc) {
        return BusClient.JSON.writer().with(SerializationFeature.INDENT_OUTPUT).writeValueAsString(doc);
    }
}
