package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.shell.core.InputReader;
import org.springframework.shell.core.command.CommandContext;
import org.springframework.shell.core.command.CommandRegistry;

class ConnectCommandTest extends AdminShellTest {

    @Autowired
    CommandRegistry registry;

    @AfterEach
    void backToAdmin() {
        bus.connection(new Connection(java.net.URI.create(app().url()), AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD, null));
    }

    @Test
    void connectTakesTheUrlAndUserAndThePasswordFromTheEnvironment() {
        assertThat(run("connect --url " + app().url() + "/api/v1/ --user admin")).isEqualTo("connected to " + app().url() + " as admin");
        assertThat(run("whoami")).isEqualTo(app().url() + " as admin");
        assertThat(run("container list")).contains("default");
    }

    @Test
    void withoutAnEnvironmentPasswordConnectReadsItFromTheTerminalWithoutEcho() throws Exception {
        AtomicReference<String> prompt = new AtomicReference<>();
        InputReader terminal = new InputReader() {
            @Override
            public char[] readPassword(String p) {
                prompt.set(p);
                return AppUnderTest.VIEWER_PASSWORD.toCharArray();
            }
        };
        // JVBUS_PASSWORD is the admin's here; the viewer's password can only come from the terminal:
        // an environment without it is what this context's Environment cannot be, so ask the command directly.
        ConnectCommand connect = new ConnectCommand(bus, new org.springframework.mock.env.MockEnvironment());
        StringWriter out = new StringWriter();
        var ctx = new CommandContext(new ShellLineParser(registry).parse("connect --user viewer"), registry, new PrintWriter(out), terminal);
        assertThat(connect.connect(ctx, app().url(), "viewer")).isEqualTo("connected to " + app().url() + " as viewer");
        assertThat(prompt.get()).isEqualTo("password for viewer: ");
        assertThat(refusal("container create --name shell-by-viewer")).contains("(forbidden, HTTP 403)");
    }

    @Test
    void aWrongPasswordOrAnUnreachableBusLeavesTheConnectionAsItWas() {
        // JVBUS_PASSWORD is the admin's, so as viewer it is wrong.
        assertThat(refusal("connect --user viewer")).contains("(unauthenticated, HTTP 401)");
        assertThat(refusal("connect --url http://127.0.0.1:1")).startsWith("cannot reach the bus at http://127.0.0.1:1");
        assertThat(refusal("connect --url ftp://x")).contains("http:// or https://");
        assertThat(run("whoami")).isEqualTo(app().url() + " as admin");
    }
}
