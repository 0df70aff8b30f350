package dev.jvbus.app;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusClientException;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.protocol.Message;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@code ./jvbus run} does, in a JVM of its own as a person runs it: the start-up lines say where
 * the API, its OpenAPI document, the sockets and the data are and how to log in; Ctrl-C (SIGINT) stops
 * it cleanly: a connected client is told, the sockets are gone, and the store still holds the topology.
 */
class RunAndStopTest {
    private static final Pattern API = Pattern.compile("jvbus: REST API http://127\\.0\\.0\\.1:(\\d+)/api/v1 \\(OpenAPI http://127\\.0\\.0\\.1:\\1/v3/api-docs,"
            + " Swagger UI http://127\\.0\\.0\\.1:\\1/swagger-ui\\.html\\)");
    private static final Pattern PASSWORD = Pattern.compile("jvbus: user admin, password (\\S+) \\(printed once");

    @TempDir
    Path dir;

    @Test
    void theStartUpLinesSayWhereEverythingIsAndCtrlCStopsCleanlyTellingClientsAndRemovingSockets() throws Exception {
        Path run = dir.resolve("run"), data = dir.resolve("data");
        try (App app = App.start("--server.port=0", "--jvbus.default.container=runner",
                "--jvbus.runtime-dir=" + run, "--jvbus.data-dir=" + data)) {
            await(() -> app.output().contains("container 'runner' ready with"), app, "the app says it is ready");
            String out = app.output();
            Matcher api = API.matcher(out);
            assertThat(api.find()).as(out).isTrue();
            int port = Integer.parseInt(api.group(1));
            assertThat(out).contains("jvbus: shm socket for container 'runner': " + run.resolve("runner.sock"),
                    "jvbus: vhost-user socket for devid 2 (virtio-net): " + run.resolve("runner-2-virtio-net.vhost-user.sock"),
                    "jvbus: data directory " + data);
            assertThat(out).doesNotContain("beyond this host");
            Matcher password = PASSWORD.matcher(out);
            assertThat(password.find()).as("how to log in: " + out).isTrue();

            // The printed login works.
            HttpResponse<String> shown = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/containers/runner"))
                    .header("Authorization", "Basic " + Base64.getEncoder().encodeToString(("admin:" + password.group(1)).getBytes(StandardCharsets.UTF_8)))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertThat(shown.statusCode()).as(shown.body()).isEqualTo(200);

            // A client with a session on the container's shm socket.
            List<Message.Event> events = new CopyOnWriteArrayList<>();
            AtomicReference<String> disconnected = new AtomicReference<>();
            try (BusClient client = BusClient.connect(run.resolve("runner.sock"), "watcher", new BusEventListener() {
                @Override public void onEvent(Message.Event e) { events.add(e); }

                @Override public void onDisconnect(BusClientException why) { disconnected.set(String.valueOf(why)); }
            })) {
                assertThat(client.enumerate()).hasSize(2);

                interrupt(app.pid());   // Ctrl-C
                assertThat(app.waitFor(120, TimeUnit.SECONDS)).as("exit status after SIGINT").isIn(0, 130);
                await(() -> disconnected.get() != null, null, "the client is told its session ended");
                assertThat(events).as("each device's removal, before the session closed")
                        .containsExactlyInAnyOrder(new Message.DevDrop(new dev.jvbus.core.bus.DevId(2)), new Message.DevDrop(new dev.jvbus.core.bus.DevId(1)));
            }
            assertThat(run.resolve("runner.sock")).as("the shm socket is removed").doesNotExist();
            assertThat(run.resolve("runner-2-virtio-net.vhost-user.sock")).as("the vhost-user socket is removed").doesNotExist();
            String store = Files.readString(data.resolve("topology.json"));
            assertThat(store).as("the store keeps the topology: stopping is not unplugging").contains("\"runner\"", "\"virtio-net\"", "\"venet\"");
            try (Stream<Path> files = Files.list(data)) {
                assertThat(files.map(p -> p.getFileName().toString())).as("no half-written file left")
                        .allMatch(n -> n.equals("topology.json") || n.equals("admin-password.hash") || n.equals("api-tokens.json"));
            }
            assertThat(app.output()).doesNotContain("Exception");
        }
    }

    @Test
    void aStartFromTheStoreSaysWhatEachDeviceOffersAsTheFirstStartDid() throws Exception {
        Path run = dir.resolve("run"), data = dir.resolve("data");
        String[] args = {"--server.port=0", "--jvbus.default.container=again", "--jvbus.runtime-dir=" + run, "--jvbus.data-dir=" + data};
        String first, second;
        try (App app = App.start(args)) {
            await(() -> app.output().contains("container 'again' ready with"), app, "the first start is ready");
            first = app.output();
            interrupt(app.pid());
            assertThat(app.waitFor(120, TimeUnit.SECONDS)).isIn(0, 130);
        }
        try (App app = App.start(args)) {
            await(() -> app.output().contains("container 'again' ready with"), app, "the start from the store is ready");
            second = app.output();
            interrupt(app.pid());
            assertThat(app.waitFor(120, TimeUnit.SECONDS)).isIn(0, 130);
        }
        assertThat(second).as("the second start builds from the store").contains("jvbus: topology from " + data.resolve("topology.json"));
        for (String device : List.of("devid 1 type venet", "devid 2 type virtio-net")) {
            Matcher offer = Pattern.compile("jvbus: container 'again' " + device + " on network 'lan0' offers \\[[^\\]]+\\]").matcher(first);
            assertThat(offer.find()).as("the first start names what " + device + " offers: " + first).isTrue();
            assertThat(second).as("the start from the store says the same for " + device).contains(offer.group());
        }
        assertThat(second).contains("VIRTIO_NET_F_MQ");
    }

    @Test
    void bindingBeyondLocalhostIsSaidAtStartUp() throws Exception {
        try (App app = App.start("--server.port=0", "--server.address=0.0.0.0",
                "--jvbus.default.devices=", "--jvbus.runtime-dir=" + dir.resolve("run"), "--jvbus.data-dir=" + dir.resolve("data"))) {
            await(() -> app.output().contains("ready with"), app, "the app says it is ready");
            assertThat(app.output()).containsPattern("jvbus: REST API http://0\\.0\\.0\\.0:\\d+/api/v1")
                    .contains("jvbus: the management API listens on 0.0.0.0, beyond this host, as configured (server.address)");
            interrupt(app.pid());
            assertThat(app.waitFor(120, TimeUnit.SECONDS)).isIn(0, 130);
        }
    }

    /**
     * The app in a JVM of its own, as {@code ./jvbus run} starts it (this JVM's class path). Started through
     * {@code env --default-signal=INT}: a build run in the background (nohup, &) hands its children SIGINT
     * ignored, and a JVM that finds SIGINT ignored keeps it so, where a person's Ctrl-C would reach it.
     * Output goes to a file, so a chatty child never blocks on a full pipe; closing kills what is left.
     */
    private record App(Process process, Path log) implements AutoCloseable {
        static App start(String... args) throws Exception {
            List<String> cmd = new java.util.ArrayList<>(List.of("env", "--default-signal=INT",
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), JvbusApplication.class.getName()));
            cmd.addAll(List.of(args));
            Path log = Files.createTempFile("jvbus-run-", ".log");
            return new App(new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start(), log);
        }

        long pid() { return process.pid(); }   // env execs java: the same process

        String output() {
            try {
                return Files.readString(log);
            } catch (java.io.IOException e) {
                return "<cannot read the app's output: " + e + ">";
            }
        }

        int waitFor(long timeout, TimeUnit unit) throws InterruptedException {
            if (!process.waitFor(timeout, unit)) throw new AssertionError("the app did not stop within " + timeout + " " + unit + "; output:\n" + output());
            return process.exitValue();
        }

        @Override
        public void close() throws Exception {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
            Files.deleteIfExists(log);
        }
    }

    /** What Ctrl-C sends: SIGINT (Process.destroy would send SIGTERM). */
    private static void interrupt(long pid) throws Exception {
        Process kill = new ProcessBuilder("kill", "-INT", Long.toString(pid)).inheritIO().start();
        assertThat(kill.waitFor()).isZero();
    }

    /** Polls with a generous deadline: a busy machine starts a JVM slowly, not wrongly. {@code app}: fail early if it died (null: it may). */
    private static void await(BooleanSupplier condition, App app, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0)
                throw new AssertionError("timed out waiting until " + what + (app == null ? "" : "; output:\n" + app.output()));
            if (app != null && !app.process().isAlive() && !condition.getAsBoolean())
                throw new AssertionError("the app ended before " + what + "; output:\n" + app.output());
            Thread.sleep(50);
        }
    }
}
