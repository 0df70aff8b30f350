package dev.jvbus.app.api;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/** A real HTTP client for the API under test, as one user, with a bearer token, or as nobody. */
record Api(int port, String user, String password, String bearer) {
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final ObjectMapper JSON = new ObjectMapper();

    Api(int port, String user, String password) {
        this(port, user, password, null);
    }

    /** The same API, presenting {@code token} as {@code Authorization: Bearer} (and no user). */
    Api withBearer(String token) {
        return new Api(port, null, null, token);
    }

    Api as(String user, String password) {
        return new Api(port, user, password);
    }

    Reply get(String path) { return send("GET", path, null); }

    Reply post(String path, String json) { return send("POST", path, json); }

    Reply delete(String path) { return send("DELETE", path, null); }

    Reply send(String method, String path, String json) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .method(method, json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json));
        if (json != null) b.header("Content-Type", "application/json");
        if (bearer != null) b.header("Authorization", "Bearer " + bearer);
        else if (user != null)
            b.header("Authorization", "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8)));
        try {
            HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Reply(r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), r.body(), r.headers().map());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** A response as the test sees it; {@code headers} only to say who answered when the body does not. */
    record Reply(int status, String contentType, String body, java.util.Map<String, java.util.List<String>> headers) {
        Reply(int status, String contentType, String body) {
            this(status, contentType, body, java.util.Map.of());
        }

        JsonNode json() {
            return JSON.readTree(body);
        }

        /** The problem's type slug (the last path segment of its type URI). */
        String problemType() {
            String t = json().path("type").asString();
            return t.substring(t.lastIndexOf('/') + 1);
        }

        /**
         * Status and body; with the headers when the body is empty, so a failure says who answered (every
         * refusal of this app is a problem document: an empty 401 is not ours).
         */
        @Override
        public String toString() {
            return status + " " + (body.isEmpty() ? "(empty body; headers " + headers + ")" : body);
        }
    }
}
