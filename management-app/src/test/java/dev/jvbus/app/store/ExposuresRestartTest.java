package dev.jvbus.app.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.app.JvbusApplication;
import dev.jvbus.core.sys.UnixConnection;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Exposures are part of the stored topology: a restart opens each again under its id, of the same kind
 * and mode, for the same device, on the same socket; one the operator closed stays closed, the default
 * ones are not made again, and ids used before are not handed out again.
 */
class ExposuresRestartTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @TempDir
    Path dir;

    /** What identifies an exposure across a restart. */
    private static Set<String> described(JsonNode list) {
        return list.valueStream().map(e -> String.join(" ", e.path("id").asString(), e.path("kind").asString(), e.path("mode").asString(),
                e.path("container").asString(), e.path("devid").asString(), e.path("path").asString())).collect(Collectors.toSet());
    }

    @Test
    void exposuresComeBackUnderTheirIdsOnTheirSocketsAndOneTheOperatorClosedStaysClosed() throws Exception {
        Path approved = Files.createDirectories(dir.resolve("approved"));
        Set<String> before;
        String closedDefault;
        long embeddedVirtio;
        String custom;
        List<Path> serverSockets = new ArrayList<>();
        try (var app = start(List.of("--jvbus.exposures.socket-dirs=" + approved))) {
            JsonNode defaults = send(app, "GET", "/api/v1/exposures", null, 200);
            assertThat(defaults.size()).as("the default topology is exposed on the first start").isEqualTo(2);
            JsonNode vhost = defaults.valueStream().filter(e -> e.path("kind").asString().equals("vhost-user")).findFirst().orElseThrow();
            closedDefault = vhost.path("id").asString();
            embeddedVirtio = vhost.path("devid").asLong();

            send(app, "POST", "/api/v1/containers", "{\"name\":\"kept\"}", 201);
            send(app, "POST", "/api/v1/containers/kept/networks", "{\"name\":\"lan0\"}", 201);
            long a = send(app, "POST", "/api/v1/containers/kept/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}", 201).path("devid").asLong();
            long b = send(app, "POST", "/api/v1/containers/kept/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}", 201).path("devid").asLong();
            send(app, "POST", "/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"kept\"}", 201);
            custom = send(app, "POST", "/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"kept\",\"devid\":" + a
                    + ",\"path\":\"" + approved.resolve("kept-a.sock") + "\"}", 201).path("id").asString();
            send(app, "POST", "/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"kept\",\"devid\":" + b
                    + ",\"mode\":\"client\",\"path\":\"qemu-b.sock\"}", 201);
            send(app, "DELETE", "/api/v1/exposures/" + closedDefault, null, 204);   // the operator closes a default one

            JsonNode now = send(app, "GET", "/api/v1/exposures", null, 200);
            before = described(now);
            assertThat(before).hasSize(4);
            now.valueStream().filter(e -> !e.path("mode").asString().equals("client"))
                    .forEach(e -> serverSockets.add(Path.of(e.path("path").asString())));
        }
        assertThat(serverSockets).allSatisfy(s -> assertThat(Files.exists(s, LinkOption.NOFOLLOW_LINKS)).as(s + " removed at stop").isFalse());

        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        try (var app = startPrinting(List.of("--jvbus.exposures.socket-dirs=" + approved), printed)) {
            JsonNode after = send(app, "GET", "/api/v1/exposures", null, 200);
            assertThat(described(after)).as("the same exposures: ids, kinds, modes, devices, sockets").isEqualTo(before);
            assertThat(after.valueStream().map(e -> e.path("id").asString())).doesNotContain(closedDefault);
            for (Path s : serverSockets) {
                assertThat(Files.readAttributes(s, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()).as(s + " is a socket again").isTrue();
            }
            assertThat(printed.toString(StandardCharsets.UTF_8)).contains("4 exposure(s)", approved.resolve("kept-a.sock").toString())
                    .doesNotContain("vhost-user socket for devid " + embeddedVirtio + " ");

            // Something listens there again: a peer that connects gets a session, with its pid.
            try (UnixConnection peer = UnixConnection.connect(approved.resolve("kept-a.sock"))) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                JsonNode shown;
                do {
                    shown = send(app, "GET", "/api/v1/exposures/" + custom, null, 200);
                    if (System.nanoTime() > deadline) throw new AssertionError("no session on the restored socket: " + shown);
                    Thread.sleep(20);
                } while (shown.path("sessions").size() == 0);
                assertThat(shown.path("sessions").get(0).path("pid").asLong()).isEqualTo(ProcessHandle.current().pid());
            }

            long newest = before.stream().mapToLong(d -> number(d.substring(0, d.indexOf(' ')))).max().orElseThrow();
            String again = send(app, "POST", "/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"embedded\",\"devid\":" + embeddedVirtio + "}", 201)
                    .path("id").asString();
            assertThat(number(again)).as("ids used before the restart (" + closedDefault + " included) are not handed out again")
                    .isGreaterThan(Math.max(newest, number(closedDefault)));
        }

        // The operator withdrew the approval: the start stops and names the exposure, rather than dropping it silently.
        assertThatThrownBy(() -> start(List.of())).satisfies(t -> assertThat(innermost(t).getMessage())
                .contains(custom, "kept-a.sock", "not allowed", "jvbus.exposures.socket-dirs"));
    }

    @Test
    void aStoreOfTheVersionBeforeExposuresIsRefusedNamingBothVersions() throws Exception {
        Files.createDirectories(dir.resolve("data"));
        Files.writeString(dir.resolve("data").resolve("topology.json"), """
                {"format": "jvbus.topology", "version": 1, "containers": [{"name": "old", "deviceLimit": 256, "nextDevid": 2,
                 "networks": ["lan0"], "devices": [{"devid": 1, "type": "venet", "deny": [], "parameters": {"network": "lan0"}}]}]}
                """);
        assertThatThrownBy(() -> start(List.of())).satisfies(t -> assertThat(innermost(t).getMessage())
                .contains("topology.json", "version 1", "reads version 2"));
    }

    private static long number(String id) {
        return Long.parseLong(id.substring(id.lastIndexOf('-') + 1));
    }

    private static Throwable innermost(Throwable t) {
        while (t.getCause() != null) t = t.getCause();
        return t;
    }

    private ConfigurableApplicationContext start(List<String> more) {
        List<String> args = new ArrayList<>(List.of(
                "--server.port=0", "--spring.main.keep-alive=false", "--jvbus.default.container=embedded",
                "--jvbus.runtime-dir=" + dir.resolve("run"), "--jvbus.data-dir=" + dir.resolve("data"),
                "--jvbus.security.users[0].name=admin", "--jvbus.security.users[0].password={noop}pw",
                "--jvbus.security.users[0].role=admin"));
        args.addAll(more);
        return new SpringApplicationBuilder(JvbusApplication.class).run(args.toArray(String[]::new));
    }

    /** Starts the app with its start-up lines copied into {@code printed}. */
    private ConfigurableApplicationContext startPrinting(List<String> more, ByteArrayOutputStream printed) {
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            return start(more);
        } finally {
            System.setOut(stdout);
        }
    }

    private static JsonNode send(ConfigurableApplicationContext app, String method, String path, String body, int expect) throws Exception {
        int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
        var b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("admin:pw".getBytes(StandardCharsets.UTF_8)));
        if (body != null) b.header("Content-Type", "application/json");
        HttpResponse<String> r = HttpClient.newHttpClient().send(b.build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(method + " " + path + " -> " + r.body()).isEqualTo(expect);
        return r.body().isEmpty() ? JSON.nullNode() : JSON.readTree(r.body());
    }
}
