package dev.jvbus.shell;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * Per-queue rates between two readings of a container's devices (their queue counters, which never
 * go down): buffers, bytes, kicks and notifications per second. A queue that is new in the second
 * reading (a device plugged meanwhile) counts from zero.
 */
record QueueRates(long devid, String type, int index, String name, boolean running, double buffers, double bytes, double kicks,
                  double notified, double suppressed) {

    static List<QueueRates> between(JsonNode before, JsonNode after, double seconds) {
        Map<String, JsonNode> earlier = new HashMap<>();
        for (JsonNode d : devices(before))
            for (JsonNode q : d.path("queues")) earlier.put(key(d, q), q.path("counters"));
        List<QueueRates> out = new ArrayList<>();
        for (JsonNode d : devices(after))
            for (JsonNode q : d.path("queues")) {
                JsonNode now = q.path("counters");
                JsonNode then = earlier.getOrDefault(key(d, q), BusClient.JSON.createObjectNode());
                out.add(new QueueRates(d.path("devid").asLong(), d.path("type").asString(), q.path("index").asInt(), q.path("name").asString(),
                        q.path("running").asBoolean(), rate(now, then, "buffers", seconds), rate(now, then, "bytes", seconds),
                        rate(now, then, "kicks", seconds), rate(now, then, "notificationsSent", seconds),
                        rate(now, then, "notificationsSuppressed", seconds)));
            }
        return out;
    }

    private static Iterable<JsonNode> devices(JsonNode doc) {
        return doc.isArray() ? doc : List.of(doc);
    }

    private static String key(JsonNode d, JsonNode q) {
        return d.path("devid").asLong() + "/" + q.path("index").asInt();
    }

    private static double rate(JsonNode now, JsonNode then, String field, double seconds) {
        return Math.max(0, now.path(field).asLong() - then.path(field).asLong()) / seconds;
    }
}
