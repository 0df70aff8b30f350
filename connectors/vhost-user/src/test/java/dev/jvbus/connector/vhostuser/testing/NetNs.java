package dev.jvbus.connector.vhostuser.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;

/**
 * A network namespace made for one test (needs root and iproute2), so TAP ports and their
 * 192.0.2.0/24 (TEST-NET-1) addresses never touch the machine's own network; {@link #close()}
 * deletes it with everything in it. Processes are put inside with {@link #wrap(List)}.
 */
public final class NetNs implements AutoCloseable {
    private static final AtomicInteger SEQ = new AtomicInteger();
    private final String name;

    private NetNs(String name) { this.name = name; }

    /** Creates the namespace with lo up; skips the calling test when not root or without iproute2. */
    public static NetNs create() {
        Tools.require(Tools.IP);
        if (!Tools.root()) {
            System.out.println("[real-client] skipped: network namespaces and TAP ports need root");
            Assumptions.abort("network namespaces and TAP ports need root");
        }
        NetNs ns = new NetNs("jvbus-" + ProcessHandle.current().pid() + "-" + SEQ.incrementAndGet());
        ns.ip("netns", "add", ns.name);
        ns.exec("ip", "link", "set", "lo", "up");
        return ns;
    }

    public String name() { return name; }

    /** A TAP port inside the namespace with {@code cidr} (e.g. 192.0.2.1/24), up. */
    public NetNs tap(String ifname, String cidr) {
        exec("ip", "tuntap", "add", ifname, "mode", "tap");
        exec("ip", "addr", "add", cidr, "dev", ifname);
        exec("ip", "link", "set", ifname, "up");
        return this;
    }

    /** {@code command} run inside the namespace. */
    public List<String> wrap(List<String> command) {
        List<String> c = new ArrayList<>(List.of(Tools.IP.find().orElseThrow().toString(), "netns", "exec", name));
        c.addAll(command);
        return c;
    }

    /** Runs a command inside the namespace and returns its output; fails on a non-zero exit. */
    public String exec(String... command) {
        return run(wrap(List.of(command)));
    }

    private String ip(String... args) {
        List<String> c = new ArrayList<>(List.of(Tools.IP.find().orElseThrow().toString()));
        c.addAll(List.of(args));
        return run(c);
    }

    private static String run(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("timed out: " + String.join(" ", cmd));
            }
            if (p.exitValue() != 0) throw new IllegalStateException(String.join(" ", cmd) + " failed (" + p.exitValue() + "): " + out.strip());
            return out;
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + String.join(" ", cmd), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: " + String.join(" ", cmd), e);
        }
    }

    @Override
    public void close() {
        try {
            ip("netns", "del", name);
        } catch (IllegalStateException e) {
            System.out.println("[real-client] could not delete netns " + name + ": " + e.getMessage());
        }
    }
}
