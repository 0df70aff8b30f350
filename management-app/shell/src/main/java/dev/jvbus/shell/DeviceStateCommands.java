package dev.jvbus.shell;

import static dev.jvbus.shell.BusClient.seg;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * device snapshot|restore|resume|migrate: the long operations. Each waits for its operation's end
 * (so a script's exit code says how it ended) unless --detach, which prints the operation's id to follow.
 */
@Component
class DeviceStateCommands {
    private final BusClient bus;

    DeviceStateCommands(BusClient bus) {
        this.bus = bus;
    }

    @Command(name = "device snapshot", description = "Save a device's state to a file (quiesced as briefly as it can, then resumed)",
            group = "Save and restore", completionProvider = "busCompletions")
    String snapshot(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                    @Option(longName = "devid", shortName = 'd', required = true, description = "the device") long devid,
                    @Option(longName = "file", shortName = 'f', required = true, description = "where to write the state document") String file,
                    @Option(longName = "stay-paused", description = "leave the device paused after saving") boolean stayPaused) {
        Path out = Path.of(file);
        if (Files.isDirectory(out)) throw new ShellRefusal("'" + file + "' is a directory; name the file to write");
        JsonNode op = bus.post(DeviceCommands.devices(container) + "/" + devid + "/snapshot", new SnapshotRequest(stayPaused ? true : null));
        JsonNode done = OperationWait.succeeded(bus, op.path("id").asString());
        JsonNode doc = done.path("result");
        try {
            Files.writeString(out, Output.json(doc) + "\n");
        } catch (IOException e) {
            throw new ShellRefusal("the snapshot (operation " + op.path("id").asString() + ") could not be written to " + file + ": " + e.getMessage());
        }
        return "snapshot of " + container + "/" + devid + " (" + doc.path("device").path("type").asString() + ") written to " + file
                + ": downtime " + doc.path("downtimeMicros").asLong() + " µs, checksum " + doc.path("checksum").path("value").asString().substring(0, 12)
                + "…" + (doc.path("paused").asBoolean() ? "; the device stays paused" : "");
    }

    @Command(name = "device restore", description = "Restore a device from a snapshot file (--dry-run: say what it would do)",
            group = "Save and restore", completionProvider = "busCompletions")
    String restore(@Option(longName = "container", shortName = 'c', required = true, description = "the container to restore into") String container,
                   @Option(longName = "file", shortName = 'f', required = true, description = "the state document a snapshot wrote") String file,
                   @Option(longName = "dry-run", description = "say what would happen; change nothing") boolean dryRun,
                   @Option(longName = "network", description = "override: the network to join here") String network,
                   @Option(longName = "deny", description = "override: features this bus must not offer, comma-separated") String deny,
                   @Option(longName = "json", description = "the API's JSON") boolean json) {
        JsonNode doc = read(file);
        Object body = doc;
        if (network != null || deny != null) {
            ObjectNode wrapped = BusClient.JSON.createObjectNode();
            wrapped.set("snapshot", doc);
            ObjectNode overrides = wrapped.putObject("overrides");
            if (network != null) overrides.put("network", network);
            if (deny != null) {
                var list = overrides.putObject("limit").putArray("deny");
                DeviceCommands.names(deny).forEach(list::add);
            }
            body = wrapped;
        }
        String path = "/api/v1/containers/" + seg(container) + "/restore" + (dryRun ? "?dry-run=true" : "");
        JsonNode answer = bus.post(path, body);
        if (dryRun) return Output.of(json, answer, DeviceStateCommands::plan);
        JsonNode done = OperationWait.succeeded(bus, answer.path("id").asString());
        JsonNode result = done.path("result");
        return json ? Output.json(result) : plan(result.path("plan"));
    }

    @Command(name = "device resume", description = "Let a paused (restored) device run once its driver is back", group = "Save and restore",
            completionProvider = "busCompletions")
    String resume(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                  @Option(longName = "devid", shortName = 'd', required = true, description = "the device") long devid,
                  @Option(longName = "driver-timeout", description = "seconds to wait for the driver (default 60)") Integer timeout,
                  @Option(longName = "detach", description = "print the operation and return") boolean detach) {
        JsonNode op = bus.post(DeviceCommands.devices(container) + "/" + devid + "/resume" + (timeout == null ? "" : "?driver-timeout=" + timeout), null);
        return follow(op, detach, "device " + container + "/" + devid + " runs");
    }

    @Command(name = "device migrate", description = "Move a device to another bus through its API (undone if the target fails)",
            group = "Save and restore", completionProvider = "busCompletions")
    String migrate(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                   @Option(longName = "devid", shortName = 'd', required = true, description = "the device") long devid,
                   @Option(longName = "to", required = true, description = "a migration target this bus's operator configured: "
                           + "its name or its URL (jvbus.migration.targets; the bus logs in there with the credential configured for it)") String to,
                   @Option(longName = "target-container", description = "the container there (default: the same name)") String targetContainer,
                   @Option(longName = "driver-timeout", description = "seconds to wait for the driver there (default 60)") Integer timeout,
                   @Option(longName = "detach", description = "print the operation and return") boolean detach) {
        JsonNode op = bus.post(DeviceCommands.devices(container) + "/" + devid + "/migrate", new MigrateRequest(to, targetContainer, timeout));
        return follow(op, detach, "device " + container + "/" + devid + " migrated to " + to);
    }

    private String follow(JsonNode op, boolean detach, String success) {
        String id = op.path("id").asString();
        if (detach) return "operation " + id + " (" + op.path("kind").asString() + ") " + op.path("state").asString()
                + "; follow it with: operation show --id " + id;
        JsonNode done = OperationWait.succeeded(bus, id);
        return success + " (operation " + id + ", steps: " + done.path("steps").valueStream().map(s -> s.path("name").asString()).toList() + ")";
    }

    static String plan(JsonNode p) {
        return Table.fields("dry run", p.path("dryRun"), "device", p.path("container").asString() + "/" + p.path("devid").asLong(),
                "type", p.path("type"), "written by", p.path("writtenBy"), "this bus", p.path("thisBus"), "model state", p.path("modelState"),
                "status", p.path("status"), "imposed", p.path("imposedFeatures"), "limited", p.path("limitedFeatures"),
                "exposures", p.path("exposures"), "then", p.path("then"));
    }

    private static JsonNode read(String file) {
        try {
            return BusClient.JSON.readTree(Files.readString(Path.of(file)));
        } catch (IOException e) {
            throw new ShellRefusal("cannot read " + file + ": " + e.getMessage());
        } catch (JacksonException e) {
            throw new ShellRefusal(file + " is not a JSON document: " + e.getOriginalMessage());
        }
    }

    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record SnapshotRequest(Boolean stayPaused) { }

    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record MigrateRequest(String to, String container, Integer driverTimeoutSeconds) { }

}
