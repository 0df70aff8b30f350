package dev.jvbus.shell;

import static dev.jvbus.shell.BusClient.seg;

import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** network list|create|show|delete and port attach-tap|detach: a container's networks and their TAP ports. */
@Component
class NetworkCommands {
    private final BusClient bus;

    NetworkCommands(BusClient bus) {
        this.bus = bus;
    }

    private static String networks(String container) {
        return "/api/v1/containers/" + seg(container) + "/networks";
    }

    @Command(name = "network list", description = "List a container's networks", group = "Networks", completionProvider = "busCompletions")
    String list(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get(networks(container)), doc -> {
            Table t = new Table("NAME", "PORTS", "MACS");
            doc.forEach(n -> t.row(n.path("name"), n.path("ports").size(), n.path("macTable").size()));
            return t;
        });
    }

    @Command(name = "network create", description = "Create an empty network in a container", group = "Networks",
            completionProvider = "busCompletions")
    String create(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                  @Option(longName = "name", shortName = 'n', required = true, description = "the new network's name") String name,
                  @Option(longName = "json", description = "the API's JSON") boolean json) {
        JsonNode n = bus.post(networks(container), new ContainerCommands.Named(name));
        return json ? Output.json(n) : "network '" + n.path("name").asString() + "' created in container '" + container + "'";
    }

    @Command(name = "network show", description = "Show a network: its ports with counters, and its MAC table", group = "Networks",
            completionProvider = "busCompletions")
    String show(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                @Option(longName = "name", shortName = 'n', required = true, description = "the network") String name,
                @Option(longName = "json", description = "the API's JSON") boolean json) {
        return Output.of(json, bus.get(networks(container) + "/" + seg(name)), n -> {
            Table ports = new Table("PORT", "NAME", "MAC", "RX-FRAMES", "TX-FRAMES", "DROPS");
            n.path("ports").forEach(p -> ports.row(p.path("id"), p.path("name"), p.path("assignedMac"), p.path("stats").path("rxFrames"),
                    p.path("stats").path("txFrames"), drops(p.path("stats").path("drops"))));
            Table macs = new Table("MAC", "PORT");
            n.path("macTable").forEach(m -> macs.row(m.path("mac"), m.path("portName")));
            return "network " + n.path("name").asString() + " in container " + container + "\n\n"
                    + (ports.isEmpty() ? "no ports" : ports.toString()) + "\n\n" + (macs.isEmpty() ? "no MACs learned" : macs.toString());
        });
    }

    @Command(name = "network delete", description = "Delete a network (refused while ports remain, unless --force, which unplugs its devices)",
            group = "Networks", completionProvider = "busCompletions")
    String delete(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                  @Option(longName = "name", shortName = 'n', required = true, description = "the network") String name,
                  @Option(longName = "force", description = "unplug the devices on it too") boolean force) {
        bus.delete(networks(container) + "/" + seg(name) + (force ? "?force=true" : ""));
        return "network '" + name + "' deleted from container '" + container + "'";
    }

    @Command(name = "port attach-tap", description = "Attach a TAP interface in a network namespace to a network", group = "Networks",
            completionProvider = "busCompletions")
    String attachTap(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                     @Option(longName = "network", required = true, description = "the network") String network,
                     @Option(longName = "namespace", required = true, description = "a namespace 'ip netns add' made") String namespace,
                     @Option(longName = "ifname", required = true, description = "the TAP's name (tap%d numbers it)") String ifname,
                     @Option(longName = "json", description = "the API's JSON") boolean json) {
        JsonNode p = bus.post(networks(container) + "/" + seg(network) + "/ports", new TapRequest(namespace, ifname));
        return json ? Output.json(p) : "TAP " + p.path("ifname").asString() + " in namespace " + p.path("namespace").asString()
                + " attached to network '" + network + "' as port " + p.path("id").asInt();
    }

    @Command(name = "port detach", description = "Detach a TAP port from its network (its interface is removed)", group = "Networks",
            completionProvider = "busCompletions")
    String detach(@Option(longName = "container", shortName = 'c', required = true, description = "the container") String container,
                  @Option(longName = "network", required = true, description = "the network") String network,
                  @Option(longName = "id", required = true, description = "the port's id (network show lists them)") int id) {
        bus.delete(networks(container) + "/" + seg(network) + "/ports/" + id);
        return "port " + id + " detached from network '" + network + "'";
    }

    record TapRequest(String namespace, String ifname) { }

    private static String drops(JsonNode drops) {
        long sum = 0;
        for (JsonNode d : drops) sum += d.asLong();
        return Long.toString(sum);
    }
}
