package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./jvbus shell <command>} as a script runs it: a separate process whose exit code is 0 when the
 * command did its work and non-zero with the problem's message on stderr (never a stack trace) when not,
 * configured by the environment alone. And {@code ./jvbus shell} with no command reads commands line by line.
 */
class OneShotExitCodeTest {

    @TempDir
    Path tmp;

    record Run(int exit, String out, String err) { }

    private Run shell(Map<String, String> env, String stdin, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(AppUnderTest.java(), "--enable-native-access=ALL-UNNAMED", "-Xmx128m",
                "-XX:TieredStopAtLevel=1", "-Dspring.shell.config.location=" + tmp.resolve("config"),
                "-cp", System.getProperty("java.class.path"), JvbusShell.class.getName()));
        cmd.addAll(List.of(args));
        Path out = tmp.resolve("out-" + System.nanoTime()), err = tmp.resolve("err-" + System.nanoTime());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("JVBUS_"));
        pb.environment().putAll(env);
        Process p = pb.start();
        try (var in = p.getOutputStream()) {
            if (stdin != null) in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("the shell ended").isTrue();
        return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static Map<String, String> as(String user, String password) {
        return Map.of("JVBUS_URL", AppUnderTest.get().url(), "JVBUS_USER", user, "JVBUS_PASSWORD", password);
    }

    @Test
    void aCommandThatWorksPrintsItsOutputAndExitsZero() throws Exception {
        Run r = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), null, "device", "list", "--container", "default");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.out()).containsPattern("(?m)^2\\s+virtio-net\\s+");
        assertThat(r.err()).isEmpty();

        Run json = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), null, "container", "show", "--name", "default", "--json");
        assertThat(json.exit()).as(json.toString()).isZero();
        assertThat(BusClient.JSON.readTree(json.out()).path("name").asString()).isEqualTo("default");
    }

    @Test
    void aRefusalExitsNonZeroWithTheProblemsMessageAndNoStackTrace() throws Exception {
        Run missing = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), null, "device", "show", "--container", "default", "--devid", "999");
        assertThat(missing.exit()).as(missing.toString()).isEqualTo(1);
        assertThat(missing.err().strip()).startsWith("error: no device 999").endsWith("(no-such-device, HTTP 404)");
        assertThat(missing.out()).isEmpty();

        Run viewer = shell(as(AppUnderTest.VIEWER, AppUnderTest.VIEWER_PASSWORD), null, "container", "create", "--name", "by-viewer");
        assertThat(viewer.exit()).as(viewer.toString()).isEqualTo(1);
        assertThat(viewer.err().strip()).startsWith("error: ").endsWith("(forbidden, HTTP 403)");

        Run usage = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), null, "device", "list");
        assertThat(usage.exit()).as(usage.toString()).isEqualTo(2);
        assertThat(usage.err()).contains("--container");

        Run unknown = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), null, "frobnicate");
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.err().strip()).isEqualTo("error: no command 'frobnicate' (help lists them)");

        Run noBus = shell(Map.of("JVBUS_URL", "http://127.0.0.1:1", "JVBUS_PASSWORD", "x"), null, "container", "list");
        assertThat(noBus.exit()).isEqualTo(2);
        assertThat(noBus.err().strip()).startsWith("error: cannot reach the bus at http://127.0.0.1:1");

        Run badUrl = shell(Map.of("JVBUS_URL", "bus.example:8080"), null, "container", "list");
        assertThat(badUrl.exit()).isEqualTo(2);
        assertThat(badUrl.err().strip()).isEqualTo("error: the bus's URL is http:// or https://, not 'bus.example:8080'");

        for (Run r : List.of(missing, viewer, usage, unknown, noBus, badUrl))
            assertThat(r.out() + r.err()).as("no stack trace").doesNotContain("Exception", "\tat ");
    }

    @Test
    void aBearerTokenFromTheEnvironmentIsUsed() throws Exception {
        var admin = new BusClient(new Connection(java.net.URI.create(AppUnderTest.get().url()), AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD, null));
        String token = admin.post("/api/v1/tokens", Map.of("name", "shell-" + System.nanoTime(), "role", "viewer")).path("token").asString();
        Run r = shell(Map.of("JVBUS_URL", AppUnderTest.get().url(), "JVBUS_TOKEN", token), null, "exposure", "list");
        assertThat(r.exit()).as(r.toString()).isZero();
        Run refused = shell(Map.of("JVBUS_URL", AppUnderTest.get().url(), "JVBUS_TOKEN", token), null, "expose", "shm", "--container", "default");
        assertThat(refused.exit()).isEqualTo(1);
        assertThat(refused.err()).contains("(forbidden, HTTP 403)");
    }

    @Test
    void withoutACommandTheShellReadsCommandsUntilExit() throws Exception {
        Run r = shell(as(AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD), "container list\ndevice show --container default --devid 999\nexit\n");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.out()).contains("jvbus shell: " + AppUnderTest.get().url() + " as admin").containsPattern("(?m)^default\\s+2\\s+lan0")
                .contains("error: no device 999").doesNotContain("Exception");
    }
}
