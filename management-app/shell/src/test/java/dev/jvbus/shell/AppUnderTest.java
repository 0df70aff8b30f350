package dev.jvbus.shell;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bus the shell administers in these tests: the management app's own jar, started once per test
 * JVM as a separate process (the shell is a client of a bus that runs elsewhere), on a random port, with
 * throw-away data and runtime directories, an admin and a viewer. It goes when the test JVM does.
 */
final class AppUnderTest {
    static final String ADMIN = "admin";
    static final String ADMIN_PASSWORD = "admin-secret";
    static final String VIEWER = "viewer";
    static final String VIEWER_PASSWORD = "viewer-secret";
    private static final Pattern LISTENING = Pattern.compile("REST API http://[^:]+:(\\d+)/api/v1");

    private static AppUnderTest app;

    final Path dir;
    final int port;
    private final Process process;

    private AppUnderTest(Path dir, int port, Process process) {
        this.dir = dir;
        this.port = port;
        this.process = process;
    }

    static synchronized AppUnderTest get() {
        if (app == null) app = start();
        return app;
    }

    String url() {
        return "http://127.0.0.1:" + port;
    }

    Path runtimeDir() {
        return dir.resolve("run");
    }

    private static AppUnderTest start() {
        Path jar = Path.of(System.getProperty("jvbus.app.jar", "../target/jvbus-management-app.jar")).toAbsolutePath().normalize();
        if (!Files.isRegularFile(jar))
            throw new IllegalStateException("the management app's jar is not built: " + jar + " (build with -am)");
        try {
            Path dir = Files.createTempDirectory("jvbus-shell-test");
            Path log = dir.resolve("app.log");
            int port = freePort();
            List<String> cmd = new ArrayList<>(List.of(java(), "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", jar.toString(),
                    "--server.port=" + port,
                    // Migration targets come from configuration only: this bus itself, and one that accepts and never answers.
                    "--jvbus.migration.targets[0].name=self", "--jvbus.migration.targets[0].url=http://127.0.0.1:" + port,
                    "--jvbus.migration.targets[0].user=" + ADMIN, "--jvbus.migration.targets[0].password=" + ADMIN_PASSWORD,
                    "--jvbus.migration.targets[1].name=hung", "--jvbus.migration.targets[1].url=http://127.0.0.1:" + HungTarget.PORT,
                    "--jvbus.migration.targets[1].user=nobody", "--jvbus.migration.targets[1].password=never-asked",
                    "--jvbus.data-dir=" + dir.resolve("data"), "--jvbus.runtime-dir=" + dir.resolve("run"),
                    "--jvbus.default.container=default",
                    "--jvbus.security.users[0].name=" + ADMIN, "--jvbus.security.users[0].password={noop}" + ADMIN_PASSWORD,
                    "--jvbus.security.users[0].role=admin",
                    "--jvbus.security.users[1].name=" + VIEWER, "--jvbus.security.users[1].password={noop}" + VIEWER_PASSWORD,
                    "--jvbus.security.users[1].role=viewer"));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            Runtime.getRuntime().addShutdownHook(new Thread(p::destroyForcibly));
            long deadline = System.nanoTime() + Duration.ofSeconds(180).toNanos();
            while (System.nanoTime() < deadline) {
                String out = Files.exists(log) ? Files.readString(log) : "";
                Matcher m = LISTENING.matcher(out);
                if (m.find()) return new AppUnderTest(dir, Integer.parseInt(m.group(1)), p);
                if (!p.isAlive()) throw new IllegalStateException("the management app exited " + p.exitValue() + ":\n" + out);
                Thread.sleep(100);
            }
            p.destroyForcibly();
            throw new IllegalStateException("the management app did not say where it listens within 180 s:\n" + Files.readString(log));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** A port free now (the app binds it a moment later; another process taking it meanwhile fails the start, loudly). */
    private static int freePort() throws IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** A migration target that accepts connections and never answers: for following and cancelling a stuck migration. */
    static final class HungTarget {
        static final int PORT;
        static final List<java.net.Socket> HELD = new java.util.concurrent.CopyOnWriteArrayList<>();

        static {
            try {
                java.net.ServerSocket server = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
                PORT = server.getLocalPort();
                Thread.ofVirtual().start(() -> {
                    try {
                        while (true) HELD.add(server.accept());   // accepted, never answered
                    } catch (IOException closed) {
                        // the test JVM is ending
                    }
                });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    static String java() {
        return ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }
}
