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
        closeDirect();
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

    /** The connection {@link #postOnThisThread} keeps to the target (one per migration), or null until the first such request. */
    private java.net.Socket direct;
    private java.io.InputStream directIn;

    /**
     * As {@link #post}, with the request written and its answer read on the calling thread, over one HTTP/1.1
     * connection of this migration's own, kept open between these requests (made by the first, outside the window,
     * so those inside it neither connect nor meet a connection an earlier migration left behind): for the requests
     * inside a migration's window, where each hand-off to the HTTP client's own threads and back is a wait for a
     * core on a loaded machine. Bounded like any request; cancellable through {@code p} when given (a watchdog
     * closes the connection, and the caller gets {@link Operations.Cancelled}). Not retried: a request whose answer
     * is lost fails, as the caller's rules for a lost target say.
     */
    Reply postOnThisThread(String path, JsonNode body, Operations.Progress p) {
        java.util.concurrent.atomic.AtomicBoolean cancelled = new java.util.concurrent.atomic.AtomicBoolean();
        Thread watchdog = null;
        try {
            if (direct == null || direct.isClosed()) {
                java.net.Socket sock = new java.net.Socket();
                sock.setTcpNoDelay(true);
                sock.connect(new java.net.InetSocketAddress(base.getHost(), base.getPort() < 0 ? 80 : base.getPort()), (int) CONNECT.toMillis());
                sock.setSoTimeout((int) REQUEST.toMillis());
                direct = sock;
                directIn = new java.io.BufferedInputStream(sock.getInputStream());
            }
            java.net.Socket sock = direct;
            if (p != null) {
                watchdog = Thread.ofVirtual().name("jvbus-migration-request-watchdog").start(() -> {
                    while (!Thread.currentThread().isInterrupted()) {
                        if (p.cancelRequested()) {
                            cancelled.set(true);
                            closeDirect();
                            return;
                        }
                        java.util.concurrent.locks.LockSupport.parkNanos(Operations.POLL.toNanos());
                    }
                });
            }
            byte[] payload = body == null ? new byte[0] : JSON.writeValueAsBytes(body);
            StringBuilder head = new StringBuilder("POST ").append(base.resolve(path).getRawPath());
            String query = base.resolve(path).getRawQuery();
            if (query != null) head.append('?').append(query);
            head.append(" HTTP/1.1\r\nHost: ").append(base.getHost()).append(base.getPort() < 0 ? "" : ":" + base.getPort())
                    .append("\r\nAccept: application/json, application/problem+json\r\nContent-Length: ").append(payload.length).append("\r\n");
            if (body != null) head.append("Content-Type: application/json\r\n");
            if (authorization != null) head.append("Authorization: ").append(authorization).append("\r\n");
            head.append("\r\n");
            java.io.OutputStream out = sock.getOutputStream();
            byte[] h = head.toString().getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
            byte[] whole = java.util.Arrays.copyOf(h, h.length + payload.length);
            System.arraycopy(payload, 0, whole, h.length, payload.length);
            out.write(whole);   // one write: one segment, not headers and body apart
            out.flush();
            return readReply(directIn);
        } catch (java.io.IOException | RuntimeException e) {
            closeDirect();
            if (cancelled.get()) throw new Operations.Cancelled();
            if (e instanceof OperationRefused r) throw r;
            throw new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + base + " did not answer POST " + path + ": "
                    + (e.getMessage() == null ? e.toString() : e.getMessage()), Map.of("target", base.toString()));
        } finally {
            if (watchdog != null) watchdog.interrupt();
        }
    }

    /** The longest answer a target may send to these requests: an operation's view, a problem document. */
    private static final int MAX_ANSWER = 1 << 20;

    /** Reads one HTTP/1.1 response (Content-Length or chunked); the connection stays usable unless it says close. */
    private Reply readReply(java.io.InputStream in) throws java.io.IOException {
        String status = line(in);
        String[] parts = status.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) throw new java.io.IOException("not an HTTP/1.x answer: " + status);
        int code = Integer.parseInt(parts[1]);
        long length = -1;
        boolean chunked = false, close = false;
        String location = null;
        for (String l; !(l = line(in)).isEmpty(); ) {
            int colon = l.indexOf(':');
            if (colon < 0) continue;
            String name = l.substring(0, colon).trim().toLowerCase(java.util.Locale.ROOT), value = l.substring(colon + 1).trim();
            switch (name) {
                case "content-length" -> length = Long.parseLong(value);
                case "transfer-encoding" -> chunked = value.toLowerCase(java.util.Locale.ROOT).contains("chunked");
                case "connection" -> close = value.equalsIgnoreCase("close");
                case "location" -> location = value;
                default -> { }
            }
        }
        java.io.ByteArrayOutputStream answer = new java.io.ByteArrayOutputStream();
        if (chunked) {
            for (long size; (size = Long.parseLong(line(in).split(";")[0].trim(), 16)) > 0; ) {
                copy(in, answer, size);
                line(in);
            }
            while (!line(in).isEmpty()) { }   // trailers
        } else if (length >= 0) {
            copy(in, answer, length);
        } else {
            close = true;   // no length: the answer ends with the connection
            answer.write(in.readNBytes(MAX_ANSWER));
        }
        if (close) closeDirect();
        JsonNode json = null;
        try {
            if (answer.size() > 0) json = JSON.readTree(answer.toByteArray());
        } catch (RuntimeException notJson) {
            // a proxy's HTML page, say: the status still says what happened
        }
        return new Reply(code, json, location);
    }

    private static void copy(java.io.InputStream in, java.io.ByteArrayOutputStream to, long n) throws java.io.IOException {
        if (to.size() + n > MAX_ANSWER) throw new java.io.IOException("an answer over " + MAX_ANSWER + " bytes");
        byte[] buf = new byte[8192];
        while (n > 0) {
            int r = in.read(buf, 0, (int) Math.min(buf.length, n));
            if (r < 0) throw new java.io.EOFException("the answer ended early");
            to.write(buf, 0, r);
            n -= r;
        }
    }

    /** One CRLF-ended header line (ISO-8859-1), at most 8 KiB. */
    private static String line(java.io.InputStream in) throws java.io.IOException {
        StringBuilder b = new StringBuilder();
        for (int c; (c = in.read()) != '\n'; ) {
            if (c < 0) throw new java.io.EOFException("the connection ended mid-answer");
            if (b.length() > 8192) throw new java.io.IOException("an answer line over 8 KiB");
            if (c != '\r') b.append((char) c);
        }
        return b.toString();
    }

    private void closeDirect() {
        java.net.Socket s = direct;
        if (s != null) {
            try {
                s.close();
            } catch (java.io.IOException ignored) {
                // closing anyway
            }
        }
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
