package dev.jvbus.shell;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.NullNode;

/**
 * The shell's one way to the bus: its REST API over HTTP, as the current {@link Connection}. A
 * refusal comes back as the API's {@link Problem}; a bus that cannot be reached as a {@link ShellRefusal}
 * naming the URL. Nothing here knows the bus's classes: the answers are JSON documents.
 */
public final class BusClient {
    static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private volatile Connection connection;

    public BusClient(Connection connection) {
        this.connection = Objects.requireNonNull(connection);
    }

    public Connection connection() {
        return connection;
    }

    void connection(Connection c) {
        this.connection = Objects.requireNonNull(c);
    }

    public JsonNode get(String path) {
        return send("GET", path, null);
    }

    public JsonNode post(String path, Object body) {
        return send("POST", path, body);
    }

    public JsonNode delete(String path) {
        return send("DELETE", path, null);
    }

    /** A path segment from a name an operator typed (a container, a network), so '/' or '?' stay part of the name. */
    static String seg(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** The answer's JSON (null node for 204), or the API's problem. */
    JsonNode send(String method, String path, Object body) {
        HttpRequest.Builder b = request(path).timeout(REQUEST_TIMEOUT);
        if (body == null) b.method(method, HttpRequest.BodyPublishers.noBody());
        else b.header("Content-Type", "application/json")
                .method(method, HttpRequest.BodyPublishers.ofString(body instanceof String s ? s : JSON.writeValueAsString(body)));
        HttpResponse<String> r = exchange(b.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode json = parse(r.body());
        if (r.statusCode() >= 400) throw Problem.of(r.statusCode(), json);
        return json == null ? NullNode.getInstance() : json;
    }

    /** Opens the event stream: the body as it arrives, until closed (closing it from another thread ends a blocked read). */
    InputStream events() {
        HttpRequest req = request("/api/v1/events").header("Accept", "text/event-stream").GET().build();
        HttpResponse<InputStream> r = exchange(req, HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() >= 400) {
            try (InputStream in = r.body()) {
                throw Problem.of(r.statusCode(), parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)));
            } catch (IOException e) {
                throw Problem.of(r.statusCode(), null);
            }
        }
        return r.body();
    }

    private HttpRequest.Builder request(String path) {
        Connection c = connection;
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(c.url() + path)).header("Accept", "application/json, application/problem+json");
        c.authorization().ifPresent(a -> b.header("Authorization", a));
        return b;
    }

    private <T> HttpResponse<T> exchange(HttpRequest req, HttpResponse.BodyHandler<T> handler) {
        try {
            return http.send(req, handler);
        } catch (HttpConnectTimeoutException e) {
            throw new ShellRefusal("cannot reach the bus at " + connection.url() + " (no answer to connect); is it running? "
                    + "(connect --url, or JVBUS_URL)");
        } catch (ConnectException e) {
            throw new ShellRefusal("cannot reach the bus at " + connection.url() + " (connection refused); is it running? "
                    + "(connect --url, or JVBUS_URL)");
        } catch (HttpTimeoutException e) {
            throw new ShellRefusal("the bus at " + connection.url() + " did not answer in time");
        } catch (IOException e) {
            throw new ShellRefusal("talking to the bus at " + connection.url() + " failed: " + reason(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ShellRefusal("interrupted");
        }
    }

    private static String reason(Exception e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? "connection closed" : m;
    }

    private static JsonNode parse(String body) {
        if (body == null || body.isBlank()) return null;
        try {
            return JSON.readTree(body);
        } catch (JacksonException e) {
            return null;   // not JSON (a proxy's error page): the status alone speaks
        }
    }
}
