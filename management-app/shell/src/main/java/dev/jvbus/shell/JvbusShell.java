package dev.jvbus.shell;

import java.io.PrintWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.springframework.boot.ApplicationRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.core.env.Environment;
import org.springframework.shell.core.command.CommandParser;
import org.springframework.shell.core.command.CommandRegistry;

/**
 * The jvbus administration shell: a client of a bus's REST API. With no arguments it is interactive
 * (JLine: history, tab completion from the live bus); with arguments it runs that one command, prints
 * its output, and exits 0, or prints the problem on stderr and exits non-zero (1: the bus refused, 2:
 * the command line was wrong or the bus could not be reached).
 *
 * <p>Where and as whom: {@code JVBUS_URL} (default http://127.0.0.1:8080), {@code JVBUS_USER} (default
 * admin) with {@code JVBUS_PASSWORD}, or {@code JVBUS_TOKEN} (a bearer token); {@code connect} changes it.
 */
@SpringBootApplication
public class JvbusShell {

    public static void main(String[] args) {
        String url = System.getenv("JVBUS_URL");
        if (url != null) {
            // Checked before Spring starts: the commands' client is made while it starts, and a refusal there
            // would come out as Spring's start-up failure (a stack trace), not as the one line it is.
            try {
                Connection.base(URI.create(url.strip()));
            } catch (RuntimeException e) {
                System.err.println("error: " + (e instanceof ShellRefusal r ? r.getMessage() : "JVBUS_URL is not a URL: '" + url + "'"));
                System.exit(ShellRefusal.USAGE);
            }
        }
        SpringApplication app = new SpringApplication(JvbusShell.class);
        // The words are the command's, not Spring's: "--container x" must not become a property.
        app.setAddCommandLineProperties(false);
        int code;
        try (ConfigurableApplicationContext ctx = app.run()) {
            ShellSession session = ctx.getBean(ShellSession.class);
            code = args.length == 0 ? session.interactive()
                    : session.once(Arrays.asList(args), new PrintWriter(System.out, true, StandardCharsets.UTF_8),
                    new PrintWriter(System.err, true, StandardCharsets.UTF_8));
        } catch (RuntimeException e) {
            // JVBUS_URL that is not a URL, a terminal that cannot be opened: one line, as for any refusal.
            System.err.println("error: " + Refusals.of(e).message());
            code = ShellRefusal.USAGE;
        }
        System.exit(code);
    }

    /** Where the shell connects first: JVBUS_URL, JVBUS_USER/JVBUS_PASSWORD or JVBUS_TOKEN (environment or properties). */
    @Bean
    BusClient busClient(Environment env) {
        String url = env.getProperty("JVBUS_URL", Connection.DEFAULT_URL.toString());
        return new BusClient(new Connection(URI.create(url.strip()), env.getProperty("JVBUS_USER", "admin"),
                env.getProperty("JVBUS_PASSWORD"), env.getProperty("JVBUS_TOKEN")));
    }

    @Bean
    CommandParser commandParser(CommandRegistry registry) {
        return new ShellLineParser(registry);
    }

    /** Spring Shell would start its own loop when the context starts; {@link #main} chooses the mode instead. */
    @Bean
    ApplicationRunner springShellApplicationRunner() {
        return args -> { };
    }
}
