package dev.jvbus.shell;

import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** expose shm|vhost-user and exposure list|show|close: /api/v1/exposures. */
@Component
class ExposureCommands {
    private final BusClient bus;

    ExposureCommands(BusClient bus) {
        this.bus = bus;
    }

    @Command(name = "expose shm", description = "Make a container reachable by host processes on its shm socket", group = "Exposures",
            completionProvider = "busCompletions")
    String shm(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
               @Option(longName = "json", description = "the API's JSON") boolean json) {
        return created(bus.post("/api/v1/exposures", new ExposureRequest("shm", container, null, null, null)), json);
    }

    @Command(name = "expose vhost-user", description = "Make a virtio device reachable by QEMU or DPDK on a vhost-user socket",
            group = "Exposures", completionProvider = "busCompletions")
    String vhostUser(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                     @Option(longName = "devid", shortName = 'd', required = true, description = "the virtio device") long devid,
                     @Option(longName = "mode", description = "server (default: the bus listens) or client (the front-end listens)") String mode,
                     @Option(longName = "path", description = "the socket (a bare name: in the runtime directory)") String path,
                     @Option(longName = "json", description = "the API's JSON") boolean json) {
        return created(bus.post("/api/v1/exposures", new ExposureRequest("vhost-user", container, devid, mode, path)), json);
    }

    @Command(name = "exposure list", description = "List the exposures with their state and sessions", group = "Exposures",
            completionProvider = "busCompletions")
    String list(@Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/exposures"), doc -> {
            Table t = new Table("ID", "KIND", "MODE", "CONTAINER", "DEVID", "STATE", "SESSIONS", "PATH");
            doc.forEach(e -> t.row(e.path("id"), e.path("kind"), e.path("mode"), e.path("container"), e.path("devid"), lower(e.path("state")),
                    e.path("sessions").size(), e.path("path")));
            return t;
        });
    }

    @Command(name = "exposure show", description = "Show an exposure: its socket, state and sessions (peer pid/uid, features)",
            group = "Exposures", completionProvider = "busCompletions")
    String show(@Option(longName = "id", required = true, description = "the exposure") String id,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/exposures/" + BusClient.seg(id)), e -> {
            Table s = new Table("PID", "UID", "GID", "SINCE", "NEGOTIATED");
            e.path("sessions").forEach(x -> s.row(x.path("pid"), x.path("uid"), x.path("gid"), x.path("since"),
                    x.path("devices").valueStream().map(d -> d.path("devid").asLong() + ":" + Table.cell(d.path("negotiated"))).toList()));
            return Table.fields("exposure", e.path("id"), "kind", e.path("kind"), "mode", e.path("mode"), "container", e.path("container"),
                    "devid", e.path("devid"), "state", lower(e.path("state")), "path", e.path("path"))
                    + "\n\n" + (s.isEmpty() ? "no sessions" : s.toString());
        });
    }

    @Command(name = "exposure close", description = "Close an exposure: its peers are hung up on, a server socket removed",
            group = "Exposures", completionProvider = "busCompletions")
    String close(@Option(longName = "id", required = true, description = "the exposure") String id) {
        bus.delete("/api/v1/exposures/" + BusClient.seg(id));
        return "exposure " + id + " closed";
    }

    private static String created(JsonNode e, boolean json) {
        return json ? Output.json(e) : "exposure " + e.path("id").asString() + " (" + e.path("kind").asString()
                + (e.path("mode").isString() ? " " + e.path("mode").asString() : "") + ") " + lower(e.path("state")) + " at " + e.path("path").asString();
    }

    /** LISTENING as "listening": a word in a sentence, not a constant. */
    static String lower(tools.jackson.databind.JsonNode state) {
        return state.asString("-").toLowerCase(java.util.Locale.ROOT);
    }

    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record ExposureRequest(String kind, String container, Long devid, String mode, String path) { }
}
