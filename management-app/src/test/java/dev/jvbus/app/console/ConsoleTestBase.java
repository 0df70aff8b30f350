package dev.jvbus.app.console;

import dev.jvbus.app.TestDirs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * The app on a random localhost port with an admin and a viewer, its own data and runtime directories
 * (fresh per test JVM), as the API tests start it; and the API as one user, to set up and check what the
 * console did.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.main.keep-alive=false",
        "jvbus.default.container=embedded",
        "jvbus.security.users[0].name=admin",
        "jvbus.security.users[0].password={noop}admin-secret",
        "jvbus.security.users[0].role=admin",
        "jvbus.security.users[1].name=viewer",
        "jvbus.security.users[1].password={noop}viewer-secret",
        "jvbus.security.users[1].role=viewer",
        // A configured migration target where nothing listens: a migration to it fails at its first step.
        "jvbus.migration.targets[0].name=nowhere",
        "jvbus.migration.targets[0].url=http://127.0.0.1:1",
        "jvbus.migration.targets[0].user=nobody",
        "jvbus.migration.targets[0].password=never-asked"})
abstract class ConsoleTestBase {
    private static final Path DIR = TestDirs.fresh("jvbus-console-test");
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final ObjectMapper JSON = new ObjectMapper();

    @DynamicPropertySource
    static void directories(DynamicPropertyRegistry r) {
        r.add("jvbus.runtime-dir", () -> DIR.resolve("run").toString());
        r.add("jvbus.data-dir", () -> DIR.resolve("data").toString());
    }

    @Value("${local.server.port}")
    int port;

    String base() {
        return "http://127.0.0.1:" + port;
    }

    /** A call to the REST API as the admin (HTTP Basic); the answer's status and body. */
    Reply api(String method, String path, String json) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base() + path))
                .method(method, json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("admin:admin-secret".getBytes(StandardCharsets.UTF_8)));
        if (json != null) b.header("Content-Type", "application/json");
        try {
            HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Reply(r.statusCode(), r.body());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    record Reply(int status, String body) {
        JsonNode json() {
            return JSON.readTree(body);
        }

        @Override
        public String toString() {
            return status + " " + body;
        }
    }
}
