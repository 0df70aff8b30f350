package dev.jvbus.core.testing;

import dev.jvbus.core.sys.NetNamespace;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The one network-namespace helper of the tests (and of {@code ./jvbus bench-guest}): a throw-away
 * namespace made with {@code ip netns add jvbus-<random>}, its loopback up, so TAP ports and their
 * 192.0.2.0/24 (TEST-NET-1) addresses never touch the machine's own network. {@link #close()} deletes
 * it with everything in it. Where it cannot be made (not root, no iproute2, no /dev/net/tun),
 * {@link #createOrSkip()} skips the test and says exactly what is missing. Commands run inside it with
 * {@link #ip} or, for a process of its own, {@link #wrap(List)}.
 */
public final class TestNetns implements AutoCloseable {
    private final String name;
    private final String missing;

    private TestNetns(String name, String missing) {
        this.name = name;
        this.missing = missing;
    }

    /**
     * Tries to make the namespace; never fails. Call it from {@code @BeforeAll} and
     * {@link #assumeAvailable()} from {@code @BeforeEach}, so every test reports itself skipped
     * with the reason (an assumption failing in {@code @BeforeAll} hides the reason in Surefire's report).
     */
    public static TestNetns create() {
        if (!new java.io.File("/dev/net/tun").exists()) {
            return new TestNetns(null, "TAP test skipped: /dev/net/tun is missing (load the tun module, or pass the device into the container)");
        }
        String name = "jvbus-" + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 16);
        Result r;
        try {
            r = run("ip", "netns", "add", name);
        } catch (IOException e) {
            return new TestNetns(null, "TAP test skipped: cannot run 'ip' (install iproute2): " + e.getMessage());
        }
        if (r.exit != 0) {
            return new TestNetns(null, "TAP test skipped: 'ip netns add " + name + "' failed (exit " + r.exit + ": "
                    + r.output.strip() + "); creating a network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)");
        }
        TestNetns ns = new TestNetns(name, null);
        ns.ip("link", "set", "lo", "up");
        return ns;
    }

    /** Skips the calling test, with the reason, when the namespace could not be made. */
    public void assumeAvailable() {
        Assumptions.assumeTrue(missing == null, missing);
    }

    /** {@link #create()} then {@link #assumeAvailable()}: skips at once (for a single test). */
    public static TestNetns createOrSkip() {
        TestNetns ns = create();
        if (ns.missing != null) System.out.println("[netns] " + ns.missing);   // the real-client logs say why they skipped
        ns.assumeAvailable();
        return ns;
    }

    public String name() { return name; }

    /** The namespace as the bus names one, for {@code TapDevice.create} and {@code TapPort.create}. */
    public NetNamespace namespace() { return NetNamespace.named(name); }

    /** Runs {@code ip -n <ns> args...} and fails the test if it fails; returns its output. */
    public String ip(String... args) {
        Result r = ipResult(args);
        if (r.exit != 0) throw new AssertionError("ip -n " + name + " " + String.join(" ", args) + " failed: " + r.output);
        return r.output;
    }

    /** Runs {@code ip -n <ns> args...}; the caller looks at the exit code. */
    public Result ipResult(String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "-n", name));
        cmd.addAll(List.of(args));
        try {
            return run(cmd.toArray(String[]::new));
        } catch (IOException e) {
            throw new AssertionError("cannot run ip", e);
        }
    }

    /** Gives interface {@code ifname} (already in the namespace) the address {@code cidr}, e.g. 192.0.2.1/24, and sets it up. */
    public TestNetns address(String ifname, String cidr) {
        ip("addr", "add", cidr, "dev", ifname);
        ip("link", "set", ifname, "up");
        return this;
    }

    /** A kernel-owned TAP in the namespace (for a QEMU {@code -netdev tap}) with {@code cidr}, up. */
    public TestNetns tap(String ifname, String cidr) {
        ip("tuntap", "add", ifname, "mode", "tap");
        return address(ifname, cidr);
    }

    /** {@code command} as a command line that runs it inside the namespace ({@code ip netns exec}, which execs it in place). */
    public List<String> wrap(List<String> command) {
        List<String> c = new ArrayList<>(List.of("ip", "netns", "exec", name));
        c.addAll(command);
        return c;
    }

    public record Result(int exit, String output) {}

    private static Result run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            p.getOutputStream().close();
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(-1, String.join(" ", cmd) + " timed out");
            }
            return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted", e);
        }
    }

    /**
     * One namespace for a whole test class, as a JUnit extension: made before the class, each test
     * skipped with the reason when it could not be made, deleted after the class.
     * <pre>{@code @RegisterExtension static final TestNetns.PerClass ns = new TestNetns.PerClass();}</pre>
     */
    public static final class PerClass implements BeforeAllCallback, BeforeEachCallback, AfterAllCallback {
        private TestNetns ns;

        @Override public void beforeAll(ExtensionContext context) { ns = create(); }

        @Override public void beforeEach(ExtensionContext context) { ns.assumeAvailable(); }

        @Override public void afterAll(ExtensionContext context) {
            if (ns != null) ns.close();
        }

        /** The class's namespace (valid inside a test, where it is known to exist). */
        public TestNetns get() { return ns; }

        public String name() { return ns.name(); }

        public NetNamespace namespace() { return ns.namespace(); }

        public String ip(String... args) { return ns.ip(args); }

        public Result ipResult(String... args) { return ns.ipResult(args); }

        public TestNetns address(String ifname, String cidr) { return ns.address(ifname, cidr); }
    }

    @Override
    public void close() {
        if (name == null) return;
        try {
            run("ip", "netns", "del", name);
        } catch (IOException ignored) {
            // best effort: a leftover namespace holds nothing but itself
        }
    }
}
