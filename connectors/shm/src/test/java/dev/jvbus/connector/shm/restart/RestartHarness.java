package dev.jvbus.connector.shm.restart;

import dev.jvbus.connector.shm.client.ChildLines;
import dev.jvbus.core.testing.ChildJvm;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The bus JVMs of a restart test: each {@link RestartBusProcess} started on the same runtime directory (so the
 * same socket path), killed with SIGKILL, and all of them, and the directory, cleaned up however the test ends.
 */
final class RestartHarness implements AutoCloseable {
    static final String ALL_FEATURES = "ffffffffffffffff";
    private final Path dir;
    private final List<ChildJvm> buses = new ArrayList<>();
    private ChildJvm current;

    RestartHarness() throws IOException {
        dir = Files.createTempDirectory("jvbus-restart");
    }

    Path socket() { return dir.resolve("run").resolve(RestartBusProcess.CONTAINER + ".sock"); }

    /** Starts a bus (the previous one must be dead) and waits for its socket. */
    synchronized ChildJvm start(String featureLimitHex, String queueSize, String... more) throws InterruptedException {
        List<String> args = new ArrayList<>(List.of(dir.resolve("run").toString(), featureLimitHex, queueSize));
        args.addAll(List.of(more));
        ChildJvm bus = ChildJvm.start(List.of("-Xmx128m"), RestartBusProcess.class, args.toArray(String[]::new));
        buses.add(bus);
        current = bus;
        ChildLines.awaitLine(bus, "UP", 120);
        return bus;
    }

    ChildJvm start() throws InterruptedException {
        return start(ALL_FEATURES, "-");
    }

    /** Waits (bounded) for the running bus to end by itself (its tripwire); false if it still runs. */
    boolean awaitDeath(long seconds) throws InterruptedException {
        ChildJvm c;
        synchronized (this) {
            c = current;
        }
        return c.process().waitFor(seconds, java.util.concurrent.TimeUnit.SECONDS);
    }

    /** SIGKILLs the bus now running. */
    synchronized void kill() throws InterruptedException {
        current.kill();
    }

    /** The running bus's output (for failure messages). */
    synchronized String output() {
        return current == null ? "" : current.output();
    }

    @Override
    public synchronized void close() throws IOException {
        for (ChildJvm b : buses) {
            try {
                b.process().getOutputStream().close();
            } catch (IOException ignored) {
                // gone already
            }
            b.close();
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
