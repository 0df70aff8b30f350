package dev.jvbus.shell;

import static dev.jvbus.shell.BusClient.seg;

import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** container list|create|show|delete: /api/v1/containers. */
@Component
class ContainerCommands {
    private final BusClient bus;

    ContainerCommands(BusClient bus) {
        this.bus = bus;
    }

    @Command(name = "container list", description = "List the containers", group = "Containers", completionProvider = "busCompletions")
    String list(@Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/containers"), doc -> {
            Table t = new Table("NAME", "DEVICES", "NETWORKS", "DEVICE-LIMIT");
            doc.forEach(c -> t.row(c.path("name"), c.path("devices").size(), c.path("networks"), c.path("deviceLimit")));
            return t;
        });
    }

    @Command(name = "container create", description = "Create an empty container", group = "Containers", completionProvider = "busCompletions")
    String create(@Option(longName = "name", shortName = 'n', required = true, description = "the new container's name") String name,
                  @Option(longName = "json", description = "the API's JSON") boolean json) {
        JsonNode c = bus.post("/api/v1/containers", new Named(name));
        return json ? Output.json(c) : "container '" + c.path("name").asString() + "' created";
    }

    @Command(name = "container show", description = "Show a container: its devices and networks", group = "Containers",
            completionProvider = "busCompletions")
    String show(@Option(longName = "name", shortName = 'n', required = true, description = "the container") String name,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/containers/" + seg(name)), c -> {
            Table devices = new Table("DEVID", "TYPE", "STATUS");
            c.path("devices").forEach(d -> devices.row(d.path("devid"), d.path("type"), d.path("status")));
            return Table.fields("container", c.path("name"), "device limit", c.path("deviceLimit"), "networks", c.path("networks"))
                    + "\n\n" + (devices.isEmpty() ? "no devices" : devices.toString());
        });
    }

    @Command(name = "container delete", description = "Delete a container, unplugging its devices (newest first)", group = "Containers",
            completionProvider = "busCompletions")
    String delete(@Option(longName = "name", shortName = 'n', required = true, description = "the container") String name) {
        bus.delete("/api/v1/containers/" + seg(name));
        return "container '" + name + "' deleted";
    }

    /** {@code {"name": ...}}: the body that creates a container or a network. */
    record Named(String name) { }
}
