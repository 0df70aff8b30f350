package dev.jvbus.shell;

import tools.jackson.databind.JsonNode;

/** Follows an operation the API answered 202 with to its end; a failed or cancelled one is its problem. */
final class OperationWait {
    private OperationWait() { }

    /** The finished operation's document, whatever its end. */
    static JsonNode until(BusClient bus, String id) {
        long pause = 20;
        while (true) {
            JsonNode op = bus.get("/api/v1/operations/" + BusClient.seg(id));
            if (!"running".equals(op.path("state").asString())) return op;
            try {
                Thread.sleep(pause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ShellRefusal("stopped waiting for operation " + id + "; it goes on (operation show --id " + id + ")");
            }
            pause = Math.min(500, pause * 2);
        }
    }

    /** The succeeded operation's document, or its problem as the refusal. */
    static JsonNode succeeded(BusClient bus, String id) {
        JsonNode op = until(bus, id);
        if ("succeeded".equals(op.path("state").asString())) return op;
        JsonNode p = op.path("problem");
        String detail = p.path("detail").asString("operation " + id + " ended " + op.path("state").asString());
        JsonNode target = p.path("targetProblem");
        if (target.isObject()) detail += "; the target said: " + target.path("detail").asString();
        throw Problem.of(p.path("status").asInt(409), withDetail(p, "operation " + id + " " + op.path("state").asString() + ": " + detail));
    }

    private static JsonNode withDetail(JsonNode problem, String detail) {
        var copy = problem.isObject() ? ((tools.jackson.databind.node.ObjectNode) problem).deepCopy() : BusClient.JSON.createObjectNode();
        copy.put("detail", detail);
        return copy;
    }
}
