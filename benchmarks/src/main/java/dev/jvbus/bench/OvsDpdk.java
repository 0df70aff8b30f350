package dev.jvbus.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A private OVS-DPDK for one benchmark round: its own ovsdb (created from the installed schema) and run
 * directory under a temporary directory, {@code ovsdb-server} and {@code ovs-vswitchd-dpdk} as children of
 * this JVM with pid files there, a {@code netdev} bridge with the NORMAL action (a learning switch, what
 * ours is) and one {@code dpdkvhostuser} port per name, each a vhost-user server socket in that directory.
 * The system's OVS service, database and run directory are never touched. {@link #close} stops both
 * daemons (their own {@code exit} command, then signals) and deletes the directory, also when start-up
 * failed half way; a shutdown hook does the same if the JVM is interrupted.
 *
 * <p>DPDK runs without hugepages ({@code --no-huge --legacy-mem -m MB}); {@code dpdk-lcore-mask} and
 * {@code pmd-cpu-mask} put its main lcore and its one poll-mode thread on {@code cpu}, the daemons'
 * other threads inherit this JVM's affinity.
 */
final class OvsDpdk implements AutoCloseable {
    static final Path VSWITCHD = Path.of("/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk");
    private static final Path SCHEMA = Path.of("/usr/share/openvswitch/vswitch.ovsschema");
    private static final List<Path> TOOLS = List.of(Path.of("/usr/sbin/ovsdb-server"), Path.of("/usr/bin/ovsdb-tool"),
            Path.of("/usr/bin/ovs-vsctl"), Path.of("/usr/bin/ovs-appctl"));

    /** One instance serves one round (seconds); this bounds it if nothing else stops it. */
    private static final String LIFETIME_BOUND = "600s";
    private final Path dir;
    private final Path logs;
    private final List<Daemon> daemons = new ArrayList<>();

    /** A daemon and its control socket. */
    private record Daemon(Process process, Path ctl) {}
    private final Thread hook = new Thread(this::stopQuietly, "ovs-dpdk-stop");

    /** Why OVS-DPDK cannot run here (a missing program, named with the Debian package), or null if it can. */
    static String missing() {
        if (!Files.isExecutable(VSWITCHD)) return VSWITCHD + " (Debian package openvswitch-switch-dpdk; .ci/install-deps installs it)";
        for (Path t : TOOLS) if (!Files.isExecutable(t)) return t + " (Debian package openvswitch-switch / openvswitch-common)";
        if (!Files.isReadable(SCHEMA)) return SCHEMA + " (Debian package openvswitch-common)";
        return null;
    }

    private OvsDpdk(Path dir, Path logs) {
        this.dir = dir;
        this.logs = logs;
    }

    /**
     * Starts a private OVS-DPDK with a bridge and one vhost-user port per name ({@link #socket} gives its path).
     * Returns once the ports exist; a front-end may connect at once.
     */
    static OvsDpdk start(Path logs, String tag, int cpu, int memMb, List<String> ports) throws IOException, InterruptedException {
        OvsDpdk ovs = new OvsDpdk(Files.createTempDirectory("jvbus-ovs-"), logs.resolve(tag));
        Runtime.getRuntime().addShutdownHook(ovs.hook);
        try {
            Files.createDirectories(ovs.logs);
            ovs.run("ovsdb-tool", "create", ovs.dir.resolve("conf.db").toString(), SCHEMA.toString());
            ovs.daemon("ovsdb-server", List.of("/usr/sbin/ovsdb-server", ovs.dir.resolve("conf.db").toString(),
                    "--remote=punix:" + ovs.db(), "--pidfile=" + ovs.dir.resolve("ovsdb-server.pid"),
                    "--log-file=" + ovs.logs.resolve("ovsdb-server.log")));
            ovs.awaitSocket(ovs.db());
            String mask = "0x" + Long.toHexString(1L << cpu);
            ovs.vsctl("--no-wait", "init");
            ovs.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                    "other_config:dpdk-extra=--no-huge --legacy-mem -m " + memMb,
                    "other_config:dpdk-lcore-mask=" + mask, "other_config:pmd-cpu-mask=" + mask);
            ovs.daemon("ovs-vswitchd", List.of(VSWITCHD.toString(), "unix:" + ovs.db(),
                    "--pidfile=" + ovs.dir.resolve("ovs-vswitchd.pid"),
                    "--log-file=" + ovs.logs.resolve("ovs-vswitchd.log")));
            ovs.vsctl("--timeout=60", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev");
            for (int i = 0; i < ports.size(); i++) {
                ovs.vsctl("--timeout=60", "add-port", "br0", ports.get(i), "--", "set", "Interface", ports.get(i),
                        "type=dpdkvhostuser", "ofport_request=" + (i + 1));
                ovs.awaitSocket(ovs.socket(ports.get(i)));
            }
            return ovs;
        } catch (IOException | InterruptedException | RuntimeException e) {
            ovs.close();
            throw e;
        }
    }

    /** The vhost-user server socket of port {@code name}. */
    Path socket(String name) { return dir.resolve(name); }

    /**
     * Whether OVS has port {@code name}'s vhost-user device running (its log says "has been added": the
     * front-end's rings are set up and a poll-mode thread polls them). Frames sent before are lost.
     */
    boolean added(String name) throws IOException {
        Path log = logs.resolve("ovs-vswitchd.log");
        return Files.exists(log) && Files.readString(log).contains("vHost Device '" + socket(name) + "' has been added");
    }

    /** {@code ovs-vsctl get Interface NAME statistics}, for the round's log. */
    String statistics(String port) throws IOException, InterruptedException {
        return run("ovs-vsctl", "--db=unix:" + db(), "--timeout=10", "get", "Interface", port, "statistics").trim();
    }

    /** {@code ovs-appctl dpif-netdev/pmd-stats-show}, for the round's log. */
    String pmdStats() throws IOException, InterruptedException {
        return run("ovs-appctl", "-t", dir.resolve("ovs-vswitchd.ctl").toString(), "--timeout=10", "dpif-netdev/pmd-stats-show");
    }

    private Path db() { return dir.resolve("db.sock"); }

    private void vsctl(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("ovs-vsctl", "--db=unix:" + db()));
        cmd.addAll(List.of(args));
        run(cmd.toArray(String[]::new));
    }

    /** Runs a command to its end (at most a minute); its output, or an exception with it. */
    private String run(String... cmd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        env(pb);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + ": no end after 60 s");
        }
        String text = new String(out);
        if (p.exitValue() != 0) throw new IOException(String.join(" ", cmd) + ": exit " + p.exitValue() + ": " + text.strip());
        return text;
    }

    /** OVS's tools find their run, database and log directories from these: all ours. */
    private void env(ProcessBuilder pb) {
        for (String v : List.of("OVS_RUNDIR", "OVS_DBDIR", "OVS_SYSCONFDIR")) pb.environment().put(v, dir.toString());
        pb.environment().put("OVS_LOGDIR", logs.toString());
    }

    private void daemon(String name, List<String> cmd) throws IOException {
        // Bounded life: should this JVM die by SIGKILL (no shutdown hook), the daemons still end within the bound.
        List<String> full = new ArrayList<>(List.of("timeout", "--kill-after=5", LIFETIME_BOUND));
        full.addAll(cmd);
        full.add("--unixctl=" + dir.resolve(name + ".ctl"));
        ProcessBuilder pb = new ProcessBuilder(full).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logs.resolve(name + ".out").toFile()));
        env(pb);
        daemons.add(new Daemon(pb.start(), dir.resolve(name + ".ctl")));
    }

    private void awaitSocket(Path p) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(p)) {
            for (Daemon d : daemons)
                if (!d.process().isAlive()) throw new IOException("an OVS daemon ended (exit " + d.process().exitValue() + "); see " + logs);
            if (System.nanoTime() > deadline) throw new IOException(p + " did not appear within 60 s; see " + logs);
            Thread.sleep(10);
        }
    }

    /** Stops vswitchd, then the database (each with its own exit command, then SIGTERM, then SIGKILL), and deletes the directory. */
    @Override
    public void close() {
        stopQuietly();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook is running or ran: it did the same
        }
    }

    private synchronized void stopQuietly() {
        for (int i = daemons.size() - 1; i >= 0; i--) {   // vswitchd first: it holds the database open
            Process d = daemons.get(i).process();
            if (!d.isAlive()) continue;
            try {
                run("ovs-appctl", "-t", daemons.get(i).ctl().toString(), "--timeout=10", "exit");
            } catch (IOException | InterruptedException | RuntimeException ignored) {
                // signals below
            }
            try {
                if (!d.waitFor(10, TimeUnit.SECONDS)) {
                    d.destroy();
                    if (!d.waitFor(5, TimeUnit.SECONDS)) {
                        d.destroyForcibly();
                        d.waitFor(5, TimeUnit.SECONDS);
                    }
                }
            } catch (InterruptedException e) {
                d.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        daemons.clear();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException | UncheckedIOException ignored) {
            // a temporary directory left behind is harmless
        }
    }
}
