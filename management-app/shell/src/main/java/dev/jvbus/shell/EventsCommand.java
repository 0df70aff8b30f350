package dev.jvbus.shell;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import org.springframework.shell.core.command.CommandContext;
import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/** events: follows the bus's server-sent events (/api/v1/events) until Ctrl-C, or until --limit events came. */
@Component
class EventsCommand {
    private final BusClient bus;
    private final Interrupts interrupts;

    EventsCommand(BusClient bus, Interrupts interrupts) {
        this.bus = bus;
        this.interrupts = interrupts;
    }

    @Command(name = "events", description = "Follow the bus's events until Ctrl-C", group = "Events", completionProvider = "busCompletions")
    void events(CommandContext ctx,
                @Option(longName = "limit", description = "stop after this many events") Integer limit,
                @Option(longName = "json", description = "one JSON document per line") boolean json) {
        PrintWriter out = ctx.outputWriter();
        InputStream in = bus.events();
        AtomicBoolean stopped = new AtomicBoolean();
        if (!json) {
            out.println("following events on " + bus.connection().url() + " (Ctrl-C stops)");
            out.flush();
        }
        interrupts.untilInterrupted(() -> {
            stopped.set(true);
            close(in);
        }, () -> follow(in, out, limit, json, stopped));
    }

    private static void follow(InputStream in, PrintWriter out, Integer limit, boolean json, AtomicBoolean stopped) {
        int seen = 0;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String name = null;
            StringBuilder data = new StringBuilder();
            String line;
            while ((line = r.readLine()) != null) {
                if (line.isEmpty()) {   // the end of one event
                    if (data.isEmpty()) continue;
                    JsonNode e = BusClient.JSON.readTree(data.toString());
                    data.setLength(0);
                    if ("overrun".equals(name)) throw Problem.of(e.path("status").asInt(409), e);
                    out.println(json ? e.toString() : line(e));
                    out.flush();
                    name = null;
                    if (limit != null && ++seen >= limit) return;
                } else if (line.startsWith("event:")) {
                    name = line.substring(6).strip();
                } else if (line.startsWith("data:")) {
                    if (!data.isEmpty()) data.append('\n');
                    data.append(line.substring(5).stripLeading());
                }   // ':' comments and ids: nothing to show
            }
            if (!stopped.get()) throw new ShellRefusal("the bus ended the event stream");
        } catch (IOException e) {
            if (!stopped.get()) throw new ShellRefusal("the event stream broke: " + e.getMessage());
        }
    }

    /** One event as a line: when, what, on what, and its details. */
    static String line(JsonNode e) {
        String details = e.path("details").properties().stream().map(d -> d.getKey() + "=" + Table.cell(d.getValue()))
                .collect(Collectors.joining(" "));
        return e.path("at").asString() + "  " + e.path("kind").asString() + "  " + e.path("subject").asString()
                + (details.isEmpty() ? "" : "  " + details);
    }

    private static void close(InputStream in) {
        try {
            in.close();
        } catch (IOException ignored) {
            // closing is all we wanted
        }
    }
}
