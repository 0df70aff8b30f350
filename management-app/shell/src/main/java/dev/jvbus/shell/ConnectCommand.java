package dev.jvbus.shell;

import java.net.URI;
import org.springframework.core.env.Environment;
import org.springframework.shell.core.command.CommandContext;
import org.springframework.shell.core.command.annotation.Command;
import org.springframework.shell.core.command.annotation.Option;
import org.springframework.stereotype.Component;

/**
 * connect: where the shell talks to and as whom. The password is read from the terminal (no echo) or
 * JVBUS_PASSWORD, never taken as an argument; with no --user, JVBUS_TOKEN (a bearer token) is used when set.
 * The new connection is tried before it replaces the old one, so a typo leaves the shell where it was.
 */
@Component
class ConnectCommand {
    private final BusClient bus;
    private final Environment env;

    ConnectCommand(BusClient bus, Environment env) {
        this.bus = bus;
        this.env = env;
    }

    @Command(name = "connect", description = "Connect to a bus's API as a user (password from the terminal or JVBUS_PASSWORD) or with JVBUS_TOKEN",
            group = "Connection", completionProvider = "busCompletions")
    String connect(CommandContext ctx,
                   @Option(longName = "url", description = "the bus's API (default: the current one)") String url,
                   @Option(longName = "user", shortName = 'u', description = "the user (default: JVBUS_TOKEN if set, else JVBUS_USER)") String user) {
        Connection now = bus.connection();
        URI to = url == null ? now.url() : URI.create(url.strip());
        String token = env.getProperty("JVBUS_TOKEN");
        Connection next;
        if (user == null && token != null && !token.isBlank()) {
            next = new Connection(to, null, null, token);
        } else {
            String who = user != null ? user : env.getProperty("JVBUS_USER", "admin");
            next = new Connection(to, who, Secrets.password(ctx, env, "JVBUS_PASSWORD", "password for " + who + ": "), null);
        }
        BusClient trial = new BusClient(next);
        trial.get("/api/v1/containers");   // refused (401) or unreachable: the shell stays as it was
        bus.connection(next);
        return "connected to " + next;
    }

    @Command(name = "whoami", description = "Where the shell is connected and as whom", group = "Connection")
    String whoami() {
        return bus.connection().toString();
    }
}
