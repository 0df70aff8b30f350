package dev.jvbus.app.fleet;

import dev.jvbus.app.JvbusApplication;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One bus of the fleet: a real app process (its own JVM, started with this JVM's class path) inside
 * its host's network namespace ({@code ip netns exec}), listening on its host's address, with its own
 * data and runtime directories. Its container {@code mig} is exposed on {@code <run>/mig.sock}.
 */
public final class BusNode implements AutoCloseable {
    public static final String CONTAINER = "mig";
    public static final int PORT = 8080;

    final String name;
    final String namespace;
    final String address;
    final Path dir;
    final List<String> extraArgs;
    /** Its operator's password (user {@code admin}): the fleet's own, never another fleet's. */
    final String adminPassword;
    private final PrintStream log;
    private Process process;
    private List<String> moreArgs = List.of();   // for the next starts, after extraArgs (restartWith)
    public final FleetApi api;

    BusNode(String name, String namespace, String address, Path dir, String adminPassword, List<String> extraArgs, PrintStream log) {
        this.adminPassword = adminPassword;
        this.name = name;
        this.namespace = namespace;
        this.address = address;
        this.dir = dir;
        this.extraArgs = List.copyOf(extraArgs);
        this.log = log;
        this.api = new FleetApi(url(), "admin", adminPassword);
    }

    public URI url() { return URI.create("http://" + address + ":" + PORT); }

    public Path socket() { return dir.resolve("run").resolve(CONTAINER + ".sock"); }

    public Path logFile() { return dir.resolve("bus.log"); }

    public String name() { return name; }

    /** Starts the process (does not wait for it to serve: {@link #awaitServing}). */
    void start() {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", namespace,
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED", "-Xss1m", "-Xmx256m", "-cp", System.getProperty("java.class.path"), JvbusApplication.class.getName(),
                "--server.address=" + address, "--server.port=" + PORT, "--jvbus.default.container=" + CONTAINER,
                "--jvbus.runtime-dir=" + dir.resolve("run"), "--jvbus.data-dir=" + dir.resolve("data"),
                "--jvbus.security.users[0].name=admin", "--jvbus.security.users[0].password={noop}" + adminPassword,
                "--jvbus.security.users[0].role=admin"));
        // Options for the bus JVMs (-Djvbus.fleet.jvm-options="-XX:StartFlightRecording=..."): to look inside them.
        String jvmOptions = System.getProperty("jvbus.fleet.jvm-options", "").strip();
        if (!jvmOptions.isEmpty()) cmd.addAll(5, List.of(jvmOptions.split("\\s+")));
        cmd.addAll(extraArgs);
        cmd.addAll(moreArgs);
        log.println("[fleet] host " + name + ": starting bus " + name + " in namespace " + namespace + " on " + url()
                + " (data " + dir.resolve("data") + ", sockets " + dir.resolve("run") + ", log " + logFile() + ")");
        try {
            Files.createDirectories(dir);
            process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(logFile().toFile())).start();
            process.getOutputStream().close();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start bus " + name, e);
        }
    }

    /** Waits until its API answers (or fails with its log if it died). */
    void awaitServing() {
        FleetApi.await(() -> {
            if (!process.isAlive()) throw new AssertionError("bus " + name + " exited (" + process.exitValue() + "):\n" + output());
            // Its API answers before its default container's socket is made (an application runner after the web server):
            // on a loaded machine, seconds apart.
            return api.healthy() && Files.exists(socket());
        }, "bus " + name + " serves " + url() + " and " + socket(), 180);
        log.println("[fleet] host " + name + ": bus " + name + " serves " + url() + " (pid " + process.pid() + ")");
    }

    public boolean isAlive() { return process != null && process.isAlive(); }

    /** Kills the process at once (SIGKILL), as a crashing node dies. */
    public void kill() {
        log.println("[fleet] host " + name + ": killing bus " + name + " (SIGKILL)");
        process.destroyForcibly();
        try {
            process.waitFor(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Starts it again on the same data directory (after {@link #kill}) and waits until it serves. */
    public void restart() {
        start();
        awaitServing();
    }

    /**
     * Stops it as Ctrl-C would and starts it again on the same data directory with {@code more} arguments
     * after its own (none: as it was made), and waits until it serves: the same bus, configured otherwise.
     */
    public void restartWith(List<String> more) {
        close();   // nothing when it is not running (killed)
        moreArgs = List.copyOf(more);
        log.println("[fleet] host " + name + ": restarting bus " + name + (more.isEmpty() ? "" : " with " + String.join(" ", more)));
        start();
        awaitServing();
    }

    public String output() {
        try {
            return Files.readString(logFile());
        } catch (IOException e) {
            return "<no log: " + e + ">";
        }
    }

    /** Stops it as Ctrl-C would (SIGTERM: sockets removed, store closed), then for good. */
    @Override
    public void close() {
        if (process == null || !process.isAlive()) return;
        process.destroy();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}
