package dev.jvbus.app.fleet;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** One bus's management API as a fleet operator (or a test) calls it: HTTP Basic, JSON in and out. */
public final class FleetApi {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private final URI base;
    private final String authorization;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();

    public FleetApi(URI base, String user, String password) {
        this.base = base;
        this.authorization = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    public URI base() { return base; }

    /** A reply: status and body (JSON, or null). */
    public record Reply(int status, JsonNode json, String text) {
        public String problemType() {
            if (json == null) return null;
            String t = json.path("type").asString("");
            return t.substring(t.lastIndexOf('/') + 1);
        }
    }

    public Reply get(String path) { return send("GET", path, null); }

    public Reply post(String path, String body) { return send("POST", path, body); }

    public Reply delete(String path) { return send("DELETE", path, null); }

    public Reply send(String method, String path, String body) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(30))
                .header("Authorization", authorization).header("Accept", "application/json, application/problem+json")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) b.header("Content-Type", "application/json");
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            JsonNode json = null;
            try {
                if (!r.body().isBlank()) json = JSON.readTree(r.body());
            } catch (RuntimeException notJson) {
                // left as text
            }
            return new Reply(r.statusCode(), json, r.body());
        } catch (IOException e) {
            return new Reply(-1, null, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Whether the API answers its health endpoint (no credentials needed there). */
    public boolean healthy() {
        return get("/actuator/health").status() == 200;
    }

    /** Starts an operation (a 202), follows it to its end and returns its last view. */
    public JsonNode operation(Reply accepted) {
        if (accepted.status() != 202) throw new AssertionError("expected 202 with an operation, got " + accepted);
        return awaitEnd(accepted.json().path("id").asString());
    }

    public JsonNode awaitEnd(String op) {
        JsonNode[] last = new JsonNode[1];
        await(() -> {
            Reply r = get("/api/v1/operations/" + op);
            last[0] = r.json();
            return r.status() == 200 && !"running".equals(r.json().path("state").asString());
        }, "operation " + op + " on " + base + " ends", 120);
        return last[0];
    }

    /** Polls {@code condition} with a generous deadline: a busy machine is slow, not wrong. */
    public static void await(BooleanSupplier condition, String what, int seconds) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) throw new AssertionError("timed out waiting until " + what);
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    @Override
    public String toString() { return base.toString(); }
}
