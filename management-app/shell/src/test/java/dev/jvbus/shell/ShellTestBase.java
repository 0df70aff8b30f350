package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.shell.test.ShellTestClient;
import org.springframework.shell.test.autoconfigure.ShellTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The shell's own context (its commands, parser, completion), driven by Spring Shell's {@link
 * ShellTestClient}, connected through the environment names an operator sets (JVBUS_URL, JVBUS_USER,
 * JVBUS_PASSWORD) to the real app in {@link AppUnderTest}.
 */
@ShellTest
@SpringBootTest(classes = JvbusShell.class, webEnvironment = SpringBootTest.WebEnvironment.NONE)
abstract class ShellTestBase {

    @Autowired
    ShellTestClient shell;

    @Autowired
    BusClient bus;

    static AppUnderTest app() {
        return AppUnderTest.get();
    }

    static void connectAs(DynamicPropertyRegistry r, String user, String password) {
        r.add("spring.shell.config.location", () -> app().dir.resolve("shell-config").toString());   // history not in ~ nor the module
        r.add("JVBUS_URL", () -> app().url());
        r.add("JVBUS_USER", () -> user);
        r.add("JVBUS_PASSWORD", () -> password);
    }

    /** What a command printed (its screen as one text). */
    String run(String line) {
        try {
            return String.join("\n", shell.sendCommand(line).lines());
        } catch (Exception e) {
            throw new AssertionError("'" + line + "' failed: " + Refusals.of(e).message(), e);
        }
    }

    /** The one line the shell shows for a command that fails (and fails the test if it did not). */
    String refusal(String line) {
        Throwable t = catchThrowable(() -> shell.sendCommand(line));
        assertThat(t).as("'" + line + "' should have been refused").isNotNull();
        return Refusals.of(t).message();
    }
}
