package dev.jvbus.app.api;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * A real Prometheus server (Debian's {@code prometheus}, which {@code .ci/install-deps} installs) in a
 * process of its own, scraping one target every second with HTTP Basic credentials, its configuration
 * and its database in a directory of its own; queried through its HTTP API.
 */
final class RealPrometheus implements AutoCloseable {
    static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
    static final Path PROMTOOL = Path.of("/usr/bin/promtool");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final Path dir;
    private final int port;

    /** Why tests with a real Prometheus cannot run here, or empty when they can. */
    static Optional<String> unavailable() {
        for (Path p : List.of(PROMETHEUS, PROMTOOL))
            if (!Files.isExecutable(p)) return Optional.of(p + " is not installed (.ci/install-deps installs Debian's prometheus, which brings promtool)");
        return Optional.empty();
    }

    private RealPrometheus(Process process, Path dir, int port) {
        this.process = process;
        this.dir = dir;
        this.port = port;
    }

    /** Starts Prometheus scraping {@code metricsPath} on 127.0.0.1:{@code targetPort} every second as {@code user}. */
    static RealPrometheus scrape(Path dir, int targetPort, String metricsPath, String user, String password) throws IOException {
        Files.createDirectories(dir);
        Path secret = dir.resolve("scrape-password");
        Files.writeString(secret, password);
        Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
        Path config = dir.resolve("prometheus.yml");
        Files.writeString(config, """
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: jvbus
                    metrics_path: %s
                    basic_auth:
                      username: %s
                      password_file: %s
                    static_configs:
                      - targets: ["127.0.0.1:%d"]
                """.formatted(metricsPath, user, secret, targetPort));
        int port = freePort();
        Process p = new ProcessBuilder(PROMETHEUS.toString(), "--config.file=" + config, "--storage.tsdb.path=" + dir.resolve("data"),
                "--web.listen-address=127.0.0.1:" + port, "--log.level=warn")
                .redirectErrorStream(true).redirectOutput(dir.resolve("prometheus.log").toFile()).start();
        RealPrometheus prom = new RealPrometheus(p, dir, port);
        try {
            prom.awaitReady();
        } catch (RuntimeException | Error e) {
            prom.close();
            throw e;
        }
        return prom;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private void awaitReady() {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            if (!process.isAlive()) throw new AssertionError("prometheus exited with " + process.exitValue() + ": " + log());
            try {
                HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(base() + "/-/ready")).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) return;
            } catch (IOException notYet) {
                // not listening yet
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
            if (System.nanoTime() - deadline > 0) throw new AssertionError("prometheus not ready within 60 s: " + log());
            pause();
        }
    }

    String base() {
        return "http://127.0.0.1:" + port;
    }

    String log() {
        try {
            return Files.readString(dir.resolve("prometheus.log"));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** The result of an instant query evaluated at {@code epochSeconds}: Prometheus's {@code data.result} array. */
    JsonNode query(String promql, double epochSeconds) {
        return get("/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8) + "&time=" + epochSeconds);
    }

    /** The result of an instant query evaluated now. */
    JsonNode query(String promql) {
        return get("/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8));
    }

    private JsonNode get(String path) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(base() + path)).build(), HttpResponse.BodyHandlers.ofString());
            JsonNode body = JSON.readTree(r.body());
            if (r.statusCode() != 200 || !body.path("status").asString().equals("success"))
                throw new AssertionError("prometheus refused " + path + ": " + r.statusCode() + " " + r.body());
            return body.path("data").path("result");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** The single sample's value of a query's result, or NaN if it has none. */
    static double scalar(JsonNode result) {
        if (result.size() == 0) return Double.NaN;
        return Double.parseDouble(result.get(0).path("value").get(1).asString());
    }

    static void pause() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs promtool with {@code args}, feeding it {@code stdin}; its exit status and output. */
    static Result promtool(String stdin, String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of(PROMTOOL.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try (var in = p.getOutputStream()) {
            if (stdin != null) in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("promtool did not finish within 60 s");
        }
        return new Result(p.exitValue(), out);
    }

    record Result(int status, String output) { }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
