package dev.jvbus.shell;

import static dev.jvbus.shell.BusClient.seg;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** device list|add|show|remove|types: hotplug and inspect devices. */
@Component
class DeviceCommands {
    private final BusClient bus;

    DeviceCommands(BusClient bus) {
        this.bus = bus;
    }

    static String devices(String container) {
        return "/api/v1/containers/" + seg(container) + "/devices";
    }

    @Command(name = "device list", description = "List a container's devices", group = "Devices", completionProvider = "busCompletions")
    String list(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get(devices(container)), doc -> {
            Table t = new Table("DEVID", "TYPE", "STATUS", "NETWORK", "MAC", "NEGOTIATED");
            doc.forEach(d -> t.row(d.path("devid"), d.path("type"), d.path("status"), d.path("parameters").path("network"),
                    d.path("parameters").path("mac"), d.path("features").path("negotiated").size()));
            return t;
        });
    }

    @Command(name = "device add", description = "Hotplug a device", group = "Devices", completionProvider = "busCompletions")
    String add(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
               @Option(longName = "type", shortName = 't', required = true, description = "the model (device types lists them)") String type,
               @Option(longName = "network", description = "the network to join") String network,
               @Option(longName = "mac", description = "its MAC (generated when absent)") String mac,
               @Option(longName = "mtu", description = "its MTU") Integer mtu,
               @Option(longName = "deny", description = "features never to offer, comma-separated (MRG_RXBUF,GUEST_CSUM)") String deny,
               @Option(longName = "allow", description = "the only features to offer, comma-separated") String allow,
               @Option(longName = "param", description = "further model parameters, key=value,key=value") String params,
               @Option(longName = "json", description = "the API's JSON") boolean json) {
        if (deny != null && allow != null) throw new ShellRefusal("give --deny or --allow, not both");
        Limit limit = deny == null && allow == null ? null : new Limit(names(allow), names(deny));
        JsonNode d = bus.post(devices(container), new DeviceRequest(type, network, mac, mtu, limit, parameters(params)));
        return json ? Output.json(d) : "device " + d.path("devid").asLong() + " (" + d.path("type").asString() + ") added to container '"
                + container + "'" + (d.path("parameters").has("mac") ? ", MAC " + d.path("parameters").path("mac").asString() : "")
                + (d.path("features").path("limited").isEmpty() ? "" : ", features limited: " + Table.cell(d.path("features").path("limited")));
    }

    @Command(name = "device show", description = "Show a device: status, features by name, parameters, queues with counters, exposures",
            group = "Devices", completionProvider = "busCompletions")
    String show(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                @Option(longName = "devid", shortName = 'd', required = true, description = "the device") long devid,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get(devices(container) + "/" + devid), DeviceCommands::readable);
    }

    @Command(name = "device remove", description = "Hot-remove a device (reset, driver told, port closed)", group = "Devices",
            completionProvider = "busCompletions")
    String remove(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                  @Option(longName = "devid", shortName = 'd', required = true, description = "the device") long devid) {
        bus.delete(devices(container) + "/" + devid);
        return "device " + devid + " removed from container '" + container + "'";
    }

    @Command(name = "device types", description = "List the device models this bus has, with their feature names", group = "Devices",
            completionProvider = "busCompletions")
    String types(@Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get("/api/v1/models"), doc -> {
            Table t = new Table("TYPE", "VIRTIO", "QUEUES", "FEATURES");
            doc.forEach(m -> t.row(m.path("type"), m.path("virtio"), m.path("queues"), m.path("features")));
            return t;
        });
    }

    static String readable(JsonNode d) {
        JsonNode f = d.path("features");
        StringBuilder sb = new StringBuilder(Table.fields(
                "device", d.path("container").asString() + "/" + d.path("devid").asLong(),
                "type", d.path("type"),
                "status", d.path("status"),
                "needs reset", d.path("needsResetReason"),
                "parameters", d.path("parameters").properties().stream().map(e -> e.getKey() + "=" + e.getValue().asString())
                        .collect(Collectors.joining(" ")),
                "available", f.path("available"),
                "limited", f.path("limited"),
                "offered", f.path("offered"),
                "negotiated", f.path("negotiated")));
        Table q = new Table("QUEUE", "NAME", "SIZE", "RUNNING", "AVAIL", "IN-FLIGHT", "BUFFERS", "BYTES", "KICKS", "NOTIFIED", "SUPPRESSED");
        d.path("queues").forEach(x -> q.row(x.path("index"), x.path("name"), x.path("size"), x.path("running"), x.path("available"),
                x.path("inFlight"), x.path("counters").path("buffers"), x.path("counters").path("bytes"), x.path("counters").path("kicks"),
                x.path("counters").path("notificationsSent"), x.path("counters").path("notificationsSuppressed")));
        sb.append("\n\n").append(q);
        if (!d.path("exposures").isEmpty()) {
            Table e = new Table("EXPOSURE", "KIND", "MODE", "STATE", "SESSIONS", "PATH");
            d.path("exposures").forEach(x -> e.row(x.path("id"), x.path("kind"), x.path("mode"), ExposureCommands.lower(x.path("state")), x.path("sessions").size(), x.path("path")));
            sb.append("\n\n").append(e);
        }
        return sb.toString();
    }

    static List<String> names(String commaSeparated) {
        if (commaSeparated == null) return null;
        return Arrays.stream(commaSeparated.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    private static Map<String, String> parameters(String s) {
        if (s == null) return null;
        Map<String, String> p = new LinkedHashMap<>();
        for (String kv : names(s)) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new ShellRefusal("--param takes key=value pairs, not '" + kv + "'");
            p.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return p;
    }

    /** The hotplug body the API takes ({@code DeviceRequest}); absent fields are left out. */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record DeviceRequest(String type, String network, String mac, Integer mtu, Limit limit, Map<String, String> parameters) { }

    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    record Limit(List<String> allow, List<String> deny) { }
}
