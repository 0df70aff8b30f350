package dev.jvbus.app.service;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Another bus, reached through its REST API, as a migration drives it. Every request is bounded (a
 * connect timeout and a request timeout) and cancellable: it is sent asynchronously and the caller's
 * operation looks at its cancel request while it waits, so a hung target never holds a migration.
 * What the target refuses comes back as TARGET_FAILED with the target's own problem document in it.
 */
final class TargetBus implements AutoCloseable {
    static final Duration CONNECT = Duration.ofSeconds(5);
    static final Duration REQUEST = Duration.ofSeconds(30);
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final Logger LOG = Logger.getLogger(TargetBus.class.getName());

    private final URI base;
    private final String authorization;
    private final HttpClient http;

    /** {@code authorization}: the configured credential for this target, as an Authorization header value. */
    TargetBus(URI base, String authorization) {
        this.base = base;
        this.authorization = authorization;
        // HTTP/1.1: over plain http the default (HTTP/2) offers an upgrade with every request until one is taken,
        // and a migration's few requests gain nothing from multiplexing; one kept-alive connection serves them.
        this.http = HttpClient.newBuilder().connectTimeout(CONNECT).followRedirects(HttpClient.Redirect.NEVER)
                .version(HttpClient.Version.HTTP_1_1).build();
    }

    URI base() {
        return base;
    }

    /** Ends the client's threads and connections now: nothing waits for a target that hangs. */
    @Override
    public void close() {
        http.shutdownNow();
    }

    /** A reply: status, body as JSON (null when there is none or it is not JSON), Location. */
    record Reply(int status, JsonNode body, String location) { }

    Reply get(String path, Operations.Progress p) {
        return send("GET", path, null, p);
    }

    Reply post(String path, JsonNode body, Operations.Progress p) {
        return send("POST", path, body, p);
    }

    /** For undoing: not cancellable (it is what a cancel does), still bounded. */
    Reply sendQuietly(String method, String path) {
        try {
            return send(method, path, null, null);
        } catch (RuntimeException e) {
            return new Reply(-1, null, null);
        }
    }

    private Reply send(String method, String path, JsonNode body, Operations.Progress p) {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).timeout(REQUEST)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                .header("Accept", "application/json, application/problem+json");
        if (body != null) b.header("Content-Type", "application/json");
        if (authorization != null) b.header("Authorization", authorization);
        CompletableFuture<HttpResponse<String>> f = http.sendAsync(b.build(), HttpResponse.BodyHandlers.ofString());
        HttpResponse<String> r = await(f, method, path, p, null);
        JsonNode json = null;
        try {
            if (!r.body().isBlank()) json = JSON.readTree(r.body());
        } catch (RuntimeException notJson) {
            // a proxy's HTML page, say: the status still says what happened
        }
        return new Reply(r.statusCode(), json, r.headers().firstValue("Location").orElse(null));
    }

    /** One event of the target's event stream: its kind and its data (a {@code BusEvent} as JSON). */
    record Event(String kind, JsonNode data) {
        static final Event END = new Event("", null);

        /** The operation this event is about ({@code details.operation}), or "". */
        String operation() {
            return data == null ? "" : data.path("details").path("operation").asString("");
        }

        String step() {
            return data == null ? "" : data.path("details").path("step").asString("");
        }
    }

    /**
     * The target's event stream ({@code GET /api/v1/events}), followed from now on: how a migration learns
     * at once that an operation of the target moved on, instead of asking again and again while the device
     * waits. Its events queue up here (a bounded number; the stream ends beyond that, and so does following
     * by events: the caller asks for the operation instead); {@link Event#END} once the stream ended, or at once
     * when the target refused the subscription (its subscriber limit, say).
     */
    final class Events implements AutoCloseable {
        private static final int MAX_QUEUED = 4096;
        private final java.util.concurrent.BlockingQueue<Event> queue = new java.util.concurrent.LinkedBlockingQueue<>(MAX_QUEUED);
        private final CompletableFuture<HttpResponse<java.util.stream.Stream<String>>> response;
        private volatile boolean ended;

        private Events(Operations.Progress p) {
            HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve("/api/v1/events")).header("Accept", "text/event-stream").GET();
            if (authorization != null) b.header("Authorization", authorization);
            response = http.sendAsync(b.build(), HttpResponse.BodyHandlers.ofLines());
            HttpResponse<java.util.stream.Stream<String>> r = await(response, "GET", "/api/v1/events", p, REQUEST);
            if (r.statusCode() != 200) {
                // Its events are a way to learn sooner, not a condition of the move: a target with all the subscribers
                // it takes (jvbus.events.max-subscribers) is followed by asking for its operations, as when a stream ends.
                r.body().close();
                LOG.log(Level.INFO, "the target bus " + base + " did not let us follow its events (HTTP " + r.statusCode()
                        + "); its operations are followed by asking for them");
                ended = true;
                queue.add(Event.END);
                return;
            }
            Thread.ofVirtual().name("jvbus-migration-events").start(() -> read(r.body()));
        }

        private void read(java.util.stream.Stream<String> lines) {
            try (lines) {
                String kind = null;
                StringBuilder data = new StringBuilder();
                for (var it = lines.iterator(); it.hasNext(); ) {
                    String line = it.next();
                    if (line.isEmpty()) {   // the end of one event
                        if (kind != null && data.length() > 0) {
                            JsonNode json = null;
                            try {
                                json = JSON.readTree(data.toString());
                            } catch (RuntimeException notJson) {
                                // an overrun's problem document reads as JSON too; anything else is skipped
                            }
                            if (!queue.offer(new Event(kind, json))) return;   // fell behind: followed by asking from now on
                        }
                        kind = null;
                        data.setLength(0);
                    } else if (line.startsWith("event:")) {
                        kind = line.substring(6).strip();
                    } else if (line.startsWith("data:")) {
                        if (data.length() > 0) data.append('\n');
                        data.append(line.substring(5));
                    }
                }
            } catch (RuntimeException e) {
                // the connection ended (the target went away, or we closed it)
            } finally {
                ended = true;
                while (!queue.offer(Event.END)) queue.poll();   // full (it fell behind): the oldest makes room for the end mark
            }
        }

        /**
         * The next event about operation {@code op} (a step, or its end), waiting at most {@code timeout};
         * null on timeout; {@link Event#END} when the stream ended. Cancelling ours stops the wait.
         */
        Event next(String op, Duration timeout, Operations.Progress p) {
            long deadline = System.nanoTime() + timeout.toNanos();
            while (true) {
                if (p != null) p.checkpoint();
                // Ended, and its end mark taken by an earlier wait: every wait from now on learns it at once.
                if (ended && queue.isEmpty()) return Event.END;
                long left = deadline - System.nanoTime();
                if (left <= 0) return null;
                Event e;
                try {
                    e = queue.poll(Math.min(left, Operations.POLL.toNanos()), TimeUnit.NANOSECONDS);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new Operations.Cancelled();
                }
                if (e == null) continue;
                if (e == Event.END || op.equals(e.operation())) return e;
            }
        }

        boolean ended() {
            return ended;
        }

        @Override
        public void close() {
            response.cancel(true);
            response.thenAccept(r -> r.body().close());
        }
    }

    /** Starts following the target's events (bounded like any request; cancellable). */
    Events events(Operations.Progress p) {
        return new Events(p);
    }

    /** Waits for a response, looking at the cancel request meanwhile; {@code limit}, when given, bounds the wait. */
    private <T> HttpResponse<T> await(CompletableFuture<HttpResponse<T>> f, String method, String path, Operations.Progress p, Duration limit) {
        long deadline = limit == null ? 0 : System.nanoTime() + limit.toNanos();
        try {
            while (true) {
                if (p != null) {
                    try {
                        p.checkpoint();
                    } catch (Operations.Cancelled c) {
                        f.cancel(true);
                        throw c;
                    }
                }
                try {
                    return f.get(Operations.POLL.toMillis(), TimeUnit.MILLISECONDS);
                } catch (TimeoutException notYet) {
                    // look at the cancel request again
                    if (limit != null && System.nanoTime() - deadline >= 0) {
                        f.cancel(true);
                        throw new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + base + " did not answer " + method + " "
                                + path + " within " + limit.toSeconds() + " s", Map.of("target", base.toString()));
                    }
                }
            }
        } catch (InterruptedException e) {
            f.cancel(true);
            Thread.currentThread().interrupt();
            throw new Operations.Cancelled();
        } catch (ExecutionException e) {
            Throwable why = e.getCause() == null ? e : e.getCause();
            throw new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + base + " did not answer " + method + " " + path
                    + ": " + (why.getMessage() == null ? why.toString() : why.getMessage()), Map.of("target", base.toString()));
        }
    }

    /** The target refused or failed {@code what}: its problem, as ours. */
    OperationRefused refused(String what, Reply r) {
        Map<String, Object> where = new LinkedHashMap<>();
        where.put("target", base.toString());
        where.put("targetStatus", r.status());
        String detail = "";
        if (r.body() != null && r.body().has("type")) {
            where.put("targetProblem", JSON.convertValue(r.body(), Map.class));
            detail = ": " + r.body().path("title").asString("") + ": " + r.body().path("detail").asString("");
        } else if (r.body() != null && r.body().has("problem")) {
            where.put("targetProblem", JSON.convertValue(r.body().get("problem"), Map.class));
            detail = ": " + r.body().path("problem").path("title").asString("") + ": " + r.body().path("problem").path("detail").asString("");
        }
        return new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + base + " " + what + " (HTTP " + r.status() + ")" + detail, where);
    }

    /**
     * Follows an operation the target started ({@code location}) until it ends or {@code timeout} passes;
     * returns its last view. Cancelling ours stops the following (the caller cancels the target's).
     */
    JsonNode follow(String location, Duration timeout, Operations.Progress p) {
        long deadline = System.nanoTime() + timeout.toNanos();
        // Short polls first: while a migration follows the target, its device is paused, and every
        // millisecond of polling is downtime; a target that takes long is asked less often (up to 50 ms).
        long pollMillis = 1;
        while (true) {
            Reply r = p == null ? sendQuietly("GET", location) : get(location, p);
            if (r.status() != 200 || r.body() == null) throw refused("lost its operation " + location, r);
            if (!"running".equals(r.body().path("state").asString(""))) return r.body();
            if (System.nanoTime() - deadline >= 0)
                throw new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + base + "'s operation " + location
                        + " did not end within " + timeout.toSeconds() + " s", Map.of("target", base.toString()));
            pollMillis = Math.min(50, pollMillis * 2);
            if (p != null) {
                p.await(() -> false, Duration.ofMillis(pollMillis));
            } else {
                try {
                    Thread.sleep(pollMillis);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return r.body();
                }
            }
        }
    }
}
