package dev.jvbus.app.fleet;

import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.core.testing.TestNetns;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A two-host fleet on one machine, built from the kernel's own parts and torn down whole:
 * <pre>
 *  root namespace (the operator, the tests)      N.254 on veth jvf-XXXXXX     (N: this run's /24, {@link #NET})
 *        |  veth
 *  host A (netns)  br0 N.1 [uplink, wire, jvb0]    bus A: API N.1:8080, TAP jvb0 = its lan0
 *        |  veth "wire" (the L2 segment between the hosts)
 *  host B (netns)  br0 N.2 [wire, jvb0, peer0]     bus B: API N.2:8080, TAP jvb0 = its lan0
 *                                                        peer0: a TAP peer on the segment (the tests read it)
 * </pre>
 * Each bus is a process of its own in its host's namespace, with its own data and runtime
 * directories; the APIs reach each other over the veths, each bus has the other as a configured
 * migration target with a credential the other bus's operator gave it (user {@code migrator}), and a
 * frame a device on either bus sends to its lan0 reaches the same L2 segment through that bus's TAP.
 * Needs root, iproute2 and /dev/net/tun; {@link #create} says what is missing otherwise.
 */
public final class Fleet implements AutoCloseable {
    /** The /24s this JVM handed out already: a second fleet of the same run (the QEMU test's) takes another.
     * Declared before {@link #NET}, whose initializer uses it (static fields initialize in source order). */
    private static final java.util.Set<String> HANDED_OUT = new java.util.HashSet<>();

    /**
     * This run's /24 ({@code "a.b.c."}): {@code -Djvbus.fleet.net=203.0.113.} when given, else one of its own
     * ({@link #freeSubnet}). The operator's end of each fleet is in the root namespace, where two fleets on one subnet
     * (two test runs on one machine: another run's bus once answered "no such device" here) would each reach
     * whichever bus the newer route points at.
     */
    static final String NET = System.getProperty("jvbus.fleet.net", "").isBlank() ? freeSubnet() : System.getProperty("jvbus.fleet.net");

    /**
     * A /24 of 198.18.0.0/15 (the range kept for benchmarks, never a real network) that no address or route of the
     * root namespace is in now: from one this process's pid picks (so concurrent runs start apart), the next free
     * one. What another run takes after this look is the pid's spread to avoid; the 512 /24s leave room.
     */
    static synchronized String freeSubnet() {
        String used = output("ip", "-4", "-o", "addr", "show") + "\n" + output("ip", "-4", "route", "show");
        long pid = ProcessHandle.current().pid();
        for (int k = 0; k < 512; k++) {
            int n = (int) ((pid * 7 + k) % 512);
            String net = "198." + (18 + n / 256) + "." + (n % 256) + ".";
            if (HANDED_OUT.contains(net) || used.contains(" " + net) || used.contains("\n" + net) || used.startsWith(net)) continue;
            HANDED_OUT.add(net);
            return net;
        }
        throw new IllegalStateException("every /24 of 198.18.0.0/15 is in use here; give one with -Djvbus.fleet.net=a.b.c.");
    }

    /** What a command printed, or "" (iproute2 missing: the fleet then says what is missing when it is made). */
    private static String output(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(20, TimeUnit.SECONDS);
            return out;
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }
    /** Where, in the root namespace, bus A's second route to B ({@code B-via-operator}) points. */
    static final int TAMPER_PORT = 18081;
    private final PrintStream log;
    private final TestNetns nsA, nsB;
    private final String rootVeth;
    public final BusNode a, b;
    private final List<AutoCloseable> extras = new ArrayList<>();
    /** This fleet's /24 (its prefix, with the trailing dot): {@link #NET} unless the test chose another. */
    private final String net;

    private Fleet(Path dir, PrintStream log, TestNetns nsA, TestNetns nsB, String net) {
        this.log = log;
        this.net = net;
        this.nsA = nsA;
        this.nsB = nsB;
        this.rootVeth = "jvf-" + UUID.randomUUID().toString().substring(0, 6);
        String migratorA = "m-" + UUID.randomUUID(), migratorB = "m-" + UUID.randomUUID();
        // Each fleet's own admin password: a request that reaches another run's bus by mistake is refused, not obeyed.
        String admin = "fleet-" + UUID.randomUUID();
        List<String> argsA = new ArrayList<>(node(migratorA, "B", net + "2", migratorB));
        // A second route from A to B, through the operator's namespace, where a test may stand in the middle (TamperingProxy).
        argsA.addAll(List.of("--jvbus.migration.targets[1].name=B-via-operator",
                "--jvbus.migration.targets[1].url=http://" + net + "254:" + TAMPER_PORT,
                "--jvbus.migration.targets[1].user=migrator", "--jvbus.migration.targets[1].password=" + migratorB));
        this.a = new BusNode("A", nsA.name(), net + "1", dir.resolve("a"), admin, argsA, log);
        this.b = new BusNode("B", nsB.name(), net + "2", dir.resolve("b"), admin, node(migratorB, "A", net + "1", migratorA), log);
    }

    /** The user another bus logs in as ({@code migrator}, admin: a restore changes things), and this bus's target. */
    private static List<String> node(String ownMigratorPassword, String other, String otherAddress, String otherMigratorPassword) {
        return List.of("--jvbus.security.users[1].name=migrator", "--jvbus.security.users[1].password={noop}" + ownMigratorPassword,
                "--jvbus.security.users[1].role=admin",
                "--jvbus.migration.targets[0].name=" + other, "--jvbus.migration.targets[0].url=http://" + otherAddress + ":" + BusNode.PORT,
                "--jvbus.migration.targets[0].user=migrator", "--jvbus.migration.targets[0].password=" + otherMigratorPassword);
    }

    /** The namespaces (or the reason they cannot be made); a test skips on {@link #assumeAvailable}. */
    public record Hosts(TestNetns a, TestNetns b) implements AutoCloseable {
        public void assumeAvailable() {
            a.assumeAvailable();
            b.assumeAvailable();
        }

        @Override public void close() {
            a.close();
            b.close();
        }
    }

    public static Hosts hosts() {
        return new Hosts(TestNetns.create(), TestNetns.create());
    }

    /** Builds the network, starts both buses, and joins each bus's lan0 to its host's bridge through a TAP. */
    public static Fleet create(Hosts hosts, Path dir, PrintStream log) {
        return create(hosts, dir, log, NET);
    }

    /**
     * As {@link #create(Hosts, Path, PrintStream)}, on the /24 {@code net} ({@code "a.b.c."}). The operator's
     * end of the fleet is in the root namespace, so two fleets up at once (two test runs on one machine)
     * on the same /24 would each reach whichever bus the newer route points at: a test that may run
     * beside the others takes a /24 of its own.
     */
    public static Fleet create(Hosts hosts, Path dir, PrintStream log, String net) {
        hosts.assumeAvailable();
        Fleet f = new Fleet(dir, log, hosts.a(), hosts.b(), net);
        try {
            f.network();
            f.a.start();
            f.b.start();
            f.a.awaitServing();
            f.b.awaitServing();
            f.tapPort(f.a, f.nsA);
            f.tapPort(f.b, f.nsB);
            return f;
        } catch (RuntimeException | Error e) {
            f.close();
            throw e;
        }
    }

    private void network() {
        log.println("[fleet] host A is network namespace " + nsA.name() + ", host B is " + nsB.name());
        for (TestNetns ns : List.of(nsA, nsB)) {
            // A fixed address: a bridge otherwise takes its lowest port's, which changes as ports come and go,
            // and the other host's ARP entry would point at an address the bridge no longer answers to.
            ip(ns, "link", "add", "br0", "address", ns == nsA ? "02:f1:ee:00:00:0a" : "02:f1:ee:00:00:0b", "type", "bridge");
            ip(ns, "link", "set", "br0", "up");
            // Quiet segment: no IPv6 autoconfiguration chatter among the frames the tests count.
            run("ip", "netns", "exec", ns.name(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
        }
        run("ip", "link", "add", rootVeth, "type", "veth", "peer", "name", "uplink", "netns", nsA.name());
        run("ip", "addr", "add", net + "254/24", "dev", rootVeth);
        run("ip", "link", "set", rootVeth, "up");
        ip(nsA, "link", "set", "dev", "uplink", "master", "br0", "up");
        ip(nsA, "link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", nsB.name());
        ip(nsA, "link", "set", "wire", "master", "br0", "up");
        ip(nsB, "link", "set", "wire", "master", "br0", "up");
        ip(nsA, "addr", "add", net + "1/24", "dev", "br0");
        ip(nsB, "addr", "add", net + "2/24", "dev", "br0");
    }

    /** A TAP port of the bus's lan0, made through its API in its host's namespace, joined to the host's bridge. */
    private void tapPort(BusNode bus, TestNetns ns) {
        log.println("[fleet] host " + bus.name() + ": POST " + bus.url() + "/api/v1/containers/" + BusNode.CONTAINER
                + "/networks/lan0/ports {namespace: " + ns.name() + ", ifname: jvb0}");
        var r = bus.api.post("/api/v1/containers/" + BusNode.CONTAINER + "/networks/lan0/ports",
                "{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"jvb0\"}");
        if (r.status() != 201) throw new AssertionError("bus " + bus.name() + " refused its TAP port: " + r);
        ip(ns, "link", "set", "jvb0", "master", "br0", "up");
    }

    /**
     * Starts {@code bus} again (after {@link BusNode#kill}, or to configure it otherwise: {@code more} arguments after its
     * own) and joins its TAP port, which it makes again from its store, to its host's bridge, as {@link #create} did.
     */
    public void restart(BusNode bus, List<String> more) {
        bus.restartWith(more);
        ip(bus == a ? nsA : nsB, "link", "set", "jvb0", "master", "br0", "up");
    }

    /** A TAP peer on host B's side of the segment (in its bridge), for reading what reaches the segment. */
    public TapPeer peerOnB(String ifname) {
        TapPeer p = TapPeer.open(ifname, NetNamespace.named(nsB.name()));
        extras.add(p);
        ip(nsB, "link", "set", ifname, "master", "br0", "up");
        log.println("[fleet] host B: TAP peer " + ifname + " joined to br0: it sees every frame on the segment");
        return p;
    }

    private void ip(TestNetns ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "-n", ns.name()));
        cmd.addAll(List.of(args));
        run(cmd.toArray(String[]::new));
    }

    private void run(String... cmd) {
        log.println("[fleet] $ " + String.join(" ", cmd));
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getOutputStream().close();
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(String.join(" ", cmd) + " timed out");
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.exitValue() != 0) throw new AssertionError(String.join(" ", cmd) + " failed (" + p.exitValue() + "): " + out);
        } catch (IOException e) {
            throw new AssertionError("cannot run " + cmd[0], e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Stops both buses (as Ctrl-C would) and deletes both namespaces with everything in them. */
    @Override
    public void close() {
        log.println("[fleet] tearing down: stopping both buses, deleting " + nsA.name() + " and " + nsB.name());
        for (AutoCloseable c : extras) {
            try {
                c.close();
            } catch (Exception ignored) {
                // best effort
            }
        }
        a.close();
        b.close();
        // Deleting host A's namespace takes the root veth's other end with it, and so the root veth.
        nsA.close();
        nsB.close();
    }
}
