package dev.jvbus.shell;

import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** operation list|show|cancel: the long operations (snapshot, restore, resume, migrate) at /api/v1/operations. */
@Component
class OperationCommands {
    private final BusClient bus;

    OperationCommands(BusClient bus) {
        this.bus = bus;
    }

    @Command(name = "operation list", description = "List the operations this bus keeps, newest first", group = "Operations",
            completionProvider = "busCompletions")
    String list(@Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/operations"), doc -> {
            Table t = new Table("ID", "KIND", "STATE", "STEP", "SUBJECT");
            doc.forEach(o -> t.row(o.path("id"), o.path("kind"), o.path("state"), lastStep(o), o.path("subject")));
            return t;
        });
    }

    @Command(name = "operation show", description = "Show an operation: state, steps, and its problem when it failed", group = "Operations",
            completionProvider = "busCompletions")
    String show(@Option(longName = "id", required = true, description = "the operation") String id,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/operations/" + BusClient.seg(id)), OperationCommands::readable);
    }

    @Command(name = "operation cancel", description = "Cancel a running operation; it undoes what it did and ends cancelled",
            group = "Operations", completionProvider = "busCompletions")
    String cancel(@Option(longName = "id", required = true, description = "the operation") String id,
                  @Option(longName = "json", description = "the API's JSON") boolean json) {
        bus.post("/api/v1/operations/" + BusClient.seg(id) + "/cancel", null);
        JsonNode end = OperationWait.until(bus, id);
        return json ? Output.json(end) : "operation " + id + " " + end.path("state").asString()
                + (end.path("problem").isMissingNode() || end.path("problem").isNull() ? "" : ": " + end.path("problem").path("detail").asString());
    }

    static String readable(JsonNode o) {
        Table steps = new Table("STEP", "STARTED", "FINISHED");
        o.path("steps").forEach(s -> steps.row(s.path("name"), s.path("startedAt"), s.path("finishedAt")));
        JsonNode p = o.path("problem");
        return Table.fields("operation", o.path("id"), "kind", o.path("kind"), "subject", o.path("subject"), "state", o.path("state"),
                "created", o.path("createdAt"), "finished", o.path("finishedAt"),
                "problem", p.isMissingNode() || p.isNull() ? null : p.path("detail").asString())
                + "\n\n" + (steps.isEmpty() ? "no steps yet" : steps.toString());
    }

    private static String lastStep(JsonNode o) {
        JsonNode steps = o.path("steps");
        return steps.isEmpty() ? "-" : steps.get(steps.size() - 1).path("name").asString();
    }
}
