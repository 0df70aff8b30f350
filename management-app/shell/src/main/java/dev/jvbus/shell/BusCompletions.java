package dev.jvbus.shell;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.springframework.shell.core.command.CommandOption;
import org.springframework.shell.core.command.completion.CompletionContext;
import org.springframework.shell.core.command.completion.CompletionProposal;
import org.springframework.shell.core.command.completion.CompletionProvider;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/**
 * Tab completion of option values from the live bus: container names, devids (of the --container on
 * the line), device types and their feature names (of the --type on the line, else every model's),
 * networks, exposure and operation ids. A bus that cannot be reached completes nothing: completion
 * never prints an error over the line being typed.
 */
@Component("busCompletions")
class BusCompletions implements CompletionProvider {
    private static final Set<String> CONTAINER_AS_NAME = Set.of("container show", "container delete");

    private final BusClient bus;

    BusCompletions(BusClient bus) {
        this.bus = bus;
    }

    @Override
    public List<CompletionProposal> apply(CompletionContext ctx) {
        CommandOption option = ctx.getCommandOption();
        if (option == null || option.longName() == null || ctx.getCommand() == null) return List.of();
        String command = ctx.getCommand().getName();
        String current = ctx.currentWord() == null ? "" : ctx.currentWordUpToCursor();
        String prefix = current.startsWith("--" + option.longName() + "=") ? "--" + option.longName() + "=" : "";
        try {
            return values(command, option.longName(), ctx.getWords()).stream()
                    .map(v -> new CompletionProposal(prefix + v).displayText(v))
                    .filter(p -> p.value().startsWith(current))
                    .toList();
        } catch (RuntimeException unreachableOrRefused) {
            return List.of();
        }
    }

    /** The values an option of a command can take now. */
    List<String> values(String command, String option, List<String> words) {
        return switch (option) {
            case "container", "target-container" -> containers();
            case "name" -> CONTAINER_AS_NAME.contains(command) ? containers()
                    : command.equals("network show") || command.equals("network delete") ? networks(words) : List.of();
            case "network" -> networks(words);
            case "devid" -> optionValue(words, "container").map(c -> names(bus.get(DeviceCommands.devices(c)), "devid")).orElse(List.of());
            case "type" -> names(bus.get("/api/v1/models"), "type");
            case "deny", "allow" -> features(words);
            case "id" -> command.startsWith("exposure") ? names(bus.get("/api/v1/exposures"), "id")
                    : command.startsWith("operation") ? names(bus.get("/api/v1/operations"), "id") : List.of();
            case "mode" -> List.of("server", "client");
            default -> List.of();
        };
    }

    private List<String> containers() {
        return names(bus.get("/api/v1/containers"), "name");
    }

    private List<String> networks(List<String> words) {
        return optionValue(words, "container").map(c -> names(bus.get("/api/v1/containers/" + BusClient.seg(c) + "/networks"), "name"))
                .orElse(List.of());
    }

    /** The features of the --type on the line (or of every model), comma-separated lists completed one name at a time. */
    private List<String> features(List<String> words) {
        var type = optionValue(words, "type");
        List<String> out = new ArrayList<>();
        for (JsonNode m : bus.get("/api/v1/models"))
            if (type.isEmpty() || type.get().equals(m.path("type").asString()))
                m.path("features").forEach(f -> out.add(shortName(f.asString())));
        return out.stream().distinct().sorted().toList();
    }

    /** VIRTIO_NET_F_MRG_RXBUF as MRG_RXBUF, the name people say (the API takes either). */
    static String shortName(String full) {
        for (String p : List.of("VIRTIO_NET_F_", "VIRTIO_RING_F_", "VIRTIO_F_", "VENET_F_"))
            if (full.startsWith(p)) return full.substring(p.length());
        return full;
    }

    static java.util.Optional<String> optionValue(List<String> words, String name) {
        for (int i = 0; i < words.size(); i++) {
            String w = words.get(i);
            if (w.startsWith("--" + name + "=")) return java.util.Optional.of(w.substring(name.length() + 3));
            if (w.equals("--" + name) && i + 1 < words.size() && !words.get(i + 1).isEmpty()) return java.util.Optional.of(words.get(i + 1));
        }
        return java.util.Optional.empty();
    }

    private static List<String> names(JsonNode array, String field) {
        return Stream.of(array).flatMap(JsonNode::valueStream).map(n -> n.path(field).asString()).filter(s -> !s.isEmpty()).toList();
    }
}
