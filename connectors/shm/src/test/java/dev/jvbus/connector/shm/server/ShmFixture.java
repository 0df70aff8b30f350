package dev.jvbus.connector.shm.server;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A real bus (models found by ServiceLoader: test-echo, test-loopback) with the shm connector on a
 * fresh runtime directory. Short path under /tmp: sun_path holds 107 bytes.
 *
 * <p>A JUnit extension for one test: JUnit makes a test instance per test, so an instance field
 * <pre>{@code @RegisterExtension final ShmFixture fx = new ShmFixture();}</pre>
 * gives each test its own bus, connector and sockets, closed after the test (after its
 * {@code @AfterEach} methods, which may still use them). A test that needs its own limits opens one
 * itself: {@code try (ShmFixture fx = new ShmFixture(limits)) ...}.
 */
public final class ShmFixture implements AfterEachCallback, AutoCloseable {
    public final Bus bus = Bus.withDiscoveredModels();
    public final Path dir;
    public final ShmConnector shm;

    public ShmFixture() {
        this(ShmLimits.DEFAULTS);
    }

    public ShmFixture(ShmLimits limits) {
        this(limits, Thread.ofPlatform().daemon().factory());
    }

    ShmFixture(ShmLimits limits, java.util.concurrent.ThreadFactory sessionThreads) {
        try {
            Path parent = Files.createTempDirectory(Path.of("/tmp"), "jvbus-shm-");
            dir = parent.resolve("run");   // does not exist yet: the connector creates it 0700
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        shm = new ShmConnector(bus, dir, limits, sessionThreads);
    }

    /** A container with {@code devices} test-echo devices, exposed for this uid. */
    public Container container(String name, int devices) {
        Container c = bus.createContainer(name);
        for (int i = 0; i < devices; i++) c.addDevice("test-echo");
        shm.expose(name);
        return c;
    }

    /** {@link #container} for a try-with-resources header: the fixture itself, with the container exposed (closed if that fails). */
    public ShmFixture with(String container, int devices) {
        try {
            container(container, devices);
            return this;
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    public Path socket(String container) {
        return shm.socketPath(container);
    }

    /** Polls a condition the bus reaches asynchronously (a session noticing its peer died). */
    public static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened: " + what);
            Thread.sleep(5);
        }
    }

    @Override
    public void afterEach(ExtensionContext context) {
        close();
    }

    @Override
    public void close() {
        shm.close();
        try (var files = Files.walk(dir.getParent())) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // temp leftovers are harmless
        }
    }
}
