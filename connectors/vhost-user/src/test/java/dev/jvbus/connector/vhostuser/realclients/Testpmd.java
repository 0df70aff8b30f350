package dev.jvbus.connector.vhostuser.realclients;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * DPDK's {@code dpdk-testpmd} (Debian's dpdk-dev) with one virtual port and no hugepages, either as
 * a virtio front-end ({@code net_virtio_user}, a client of a vhost-user back-end such as ours) or as
 * DPDK's own vhost-user back-end ({@code net_vhost}, the reference to compare against).
 *
 * <p>Two ways to drive it: {@link Builder#autoStart()} forwards from the start, and {@link #stop()}
 * ends it and returns the accumulated forward statistics; or interactive ({@link Builder#interactive()}),
 * with {@link #command}, {@link #startForwarding()}, {@link #portStats()} and {@link #quit()}.
 */
public final class Testpmd implements AutoCloseable {
    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final Pattern FWD_STARTED = Pattern.compile("packet forwarding( with retry)? - ports=");
    private static final Pattern PRESS_ENTER = Pattern.compile("Press enter to exit");
    private static final Pattern ACCUMULATED = Pattern.compile("Accumulated forward statistics for all ports");
    private static final Pattern RX = Pattern.compile("RX-packets:\\s*(\\d+)\\s+RX-(?:dropped|missed):\\s*(\\d+)");
    private static final Pattern TX = Pattern.compile("TX-packets:\\s*(\\d+)\\s+TX-(?:dropped|errors):\\s*(\\d+)");
    private static final Pattern NIC_STATS = Pattern.compile("NIC statistics for port (\\d+)");
    private static final Pattern STATS_END = Pattern.compile("^\\s*#{20,}\\s*$");
    private static final Pattern PORT_SUMMARY = Pattern.compile("Number of available ports: (\\d+)");

    private final ProcessConsole console;
    private final boolean interactive;
    private final List<String> commandLine;

    private Testpmd(ProcessConsole console, boolean interactive, List<String> commandLine) {
        this.console = console;
        this.interactive = interactive;
        this.commandLine = commandLine;
    }

    public static Builder builder() { return new Builder(); }

    public ProcessConsole console() { return console; }

    public List<String> commandLine() { return commandLine; }

    /** Packet counts of one port or of all ports (forward statistics). dropped is RX-dropped/missed and TX-dropped/errors. */
    public record Stats(long rxPackets, long rxDropped, long txPackets, long txDropped) {
        public static final Stats ZERO = new Stats(0, 0, 0, 0);
    }

    /**
     * How long testpmd may take to start: EAL set-up touches its whole {@code -m} memory, seconds on an
     * idle machine, over 20 s seen with a CPU hog on each core and other builds beside it. A hang guard.
     */
    public static final Duration START_WAIT = Duration.ofSeconds(90);

    /** Waits until forwarding has started (auto-start) or the port is set up (interactive). */
    public Testpmd awaitStarted(Duration timeout) throws InterruptedException {
        if (!interactive) {
            console.awaitLine(0, FWD_STARTED, timeout);
            return this;
        }
        // the prompt has no newline: ask something and wait for the answer, which comes after set-up
        int mark = console.lineCount();
        console.send("show port summary all");
        console.awaitLine(mark, PORT_SUMMARY, timeout);
        return this;
    }

    /** Sends a line to the interactive prompt. */
    public void command(String line) {
        if (!interactive) throw new IllegalStateException("testpmd was started with --auto-start; use stop()");
        console.send(line);
    }

    public void startForwarding() throws InterruptedException {
        int mark = console.lineCount();
        command("start");
        console.awaitLine(mark, FWD_STARTED, Duration.ofSeconds(10));
    }

    /**
     * Interactive: {@code stop} (forwarding only; testpmd and its port stay up, so a vhost-user
     * back-end keeps its session) and the accumulated forward statistics it prints.
     */
    public Stats stopForwarding() throws InterruptedException {
        int mark = console.lineCount();
        command("stop");
        int at = console.indexOf(mark, ACCUMULATED, Duration.ofSeconds(10));
        if (at < 0) console.awaitLine(mark, ACCUMULATED, Duration.ZERO);
        console.awaitLine(at + 1, TX, Duration.ofSeconds(5));   // the block's TX line has arrived too
        return accumulated();
    }

    /** {@code show port stats all}: the NIC counters of port 0 (the one virtual port). */
    public Stats portStats() throws InterruptedException {
        int mark = console.lineCount();
        command("show port stats all");
        int header = console.indexOf(mark, NIC_STATS, Duration.ofSeconds(10));
        if (header < 0) console.awaitLine(mark, NIC_STATS, Duration.ZERO);
        int end = console.indexOf(header + 1, STATS_END, Duration.ofSeconds(10));
        if (end < 0) console.awaitLine(header + 1, STATS_END, Duration.ZERO);
        return parse(console.lines().subList(header, end));
    }

    /**
     * Ends forwarding and testpmd (newline at "Press enter to exit", or {@code stop}/{@code quit}
     * when interactive) and returns the accumulated forward statistics it prints on the way out.
     */
    public Stats stop() throws InterruptedException {
        if (!console.alive()) return accumulated();
        int mark = console.lineCount();
        if (interactive) {
            console.send("stop");
            console.send("quit");
        } else {
            if (console.indexOf(0, PRESS_ENTER, Duration.ofSeconds(5)) >= 0) console.send("");
            else console.terminate();
        }
        if (console.waitFor(Duration.ofSeconds(15)).isEmpty()) console.close();
        return console.indexOf(mark, ACCUMULATED, Duration.ZERO) >= 0 ? accumulated() : Stats.ZERO;
    }

    /** Interactive: {@code quit} and wait for the exit. */
    public void quit() throws InterruptedException {
        command("quit");
        if (console.waitFor(Duration.ofSeconds(15)).isEmpty()) console.close();
    }

    /** The last "Accumulated forward statistics" block printed; fails if there is none. */
    public Stats accumulated() throws InterruptedException {
        List<String> lines = console.lines();
        for (int i = lines.size() - 1; i >= 0; i--) {
            if (ACCUMULATED.matcher(lines.get(i)).find()) return parse(lines.subList(i, Math.min(lines.size(), i + 4)));
        }
        console.awaitLine(0, ACCUMULATED, Duration.ZERO);
        throw new AssertionError("unreachable");
    }

    static Stats parse(List<String> block) {
        long rx = -1, rxd = 0, tx = -1, txd = 0;
        for (String l : block) {
            Matcher m = RX.matcher(l);
            if (rx < 0 && m.find()) { rx = Long.parseLong(m.group(1)); rxd = Long.parseLong(m.group(2)); }
            m = TX.matcher(l);
            if (tx < 0 && m.find()) { tx = Long.parseLong(m.group(1)); txd = Long.parseLong(m.group(2)); }
        }
        if (rx < 0 || tx < 0) throw new AssertionError("no RX-/TX-packets lines in:\n" + String.join("\n", block));
        return new Stats(rx, rxd, tx, txd);
    }

    public boolean alive() { return console.alive(); }

    /**
     * SIGKILL to testpmd itself (not to the {@code timeout} wrapping it): the front-end vanishes
     * without closing anything, as a crashed client would. Waits for the process to be gone.
     */
    public void kill() throws InterruptedException {
        ProcessHandle self = ProcessHandle.of(console.pid()).orElse(null);
        if (self == null) return;
        List<ProcessHandle> family = new ArrayList<>(self.descendants().toList());
        if (family.isEmpty()) family.add(self);       // no timeout wrapper: testpmd is the process
        family.forEach(ProcessHandle::destroyForcibly);
        for (ProcessHandle h : family) {
            try {
                h.onExit().get(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                throw new AssertionError("testpmd " + h.pid() + " did not die on SIGKILL", e);
            }
        }
        console.waitFor(Duration.ofSeconds(10));
    }

    @Override public void close() { console.close(); }

    public static final class Builder {
        private String vdev;
        private String forwardMode = "io";
        private String cores = "0-1";
        private int memoryMib = 512;
        private int mbufs = 8192;
        private Integer txPacketLength;
        private Integer burst;
        private boolean interactive;
        private final List<String> extraEal = new ArrayList<>();
        private final List<String> extraApp = new ArrayList<>();
        private Duration timeout = START_WAIT.plus(Duration.ofMinutes(2));   // outlasts a slow start and the test's traffic
        private String name = "testpmd-" + ProcessHandle.current().pid() + "-" + SEQ.incrementAndGet();
        private Path logDir = Path.of("target", "real-clients");

        /** A virtio front-end connecting to the vhost-user back-end listening on {@code socket}. */
        public Builder virtioUser(Path socket) { return virtioUser(socket, ""); }

        /** As {@link #virtioUser(Path)} with more devargs, e.g. {@code "server=1,queues=2,mrg_rxbuf=0"}. */
        public Builder virtioUser(Path socket, String devargs) {
            vdev = "net_virtio_user0,path=" + socket + (devargs.isEmpty() ? "" : "," + devargs);
            return this;
        }

        /** DPDK's own vhost-user back-end, listening on {@code socket}. */
        public Builder vhostBackend(Path socket) { return vhostBackend(socket, ""); }

        /** As {@link #vhostBackend(Path)} with more devargs, e.g. {@code "client=1,queues=1"}. */
        public Builder vhostBackend(Path socket, String devargs) {
            vdev = "net_vhost0,iface=" + socket + (devargs.isEmpty() ? "" : "," + devargs);
            return this;
        }

        /** io, txonly, rxonly, macswap, icmpecho (answers ARP and ping), ... */
        public Builder forwardMode(String mode) { this.forwardMode = mode; return this; }

        /** EAL cores, default {@code 0-1} (the first is the main lcore, the rest forward). */
        public Builder cores(String list) { this.cores = list; return this; }

        public Builder memoryMib(int mib) { this.memoryMib = mib; return this; }

        public Builder mbufs(int n) { this.mbufs = n; return this; }

        /** txonly packet length (bytes, default 64). */
        public Builder txPacketLength(int bytes) { this.txPacketLength = bytes; return this; }

        public Builder burst(int n) { this.burst = n; return this; }

        /** Interactive mode (commands on stdin); default is --auto-start. */
        public Builder interactive() { this.interactive = true; return this; }

        public Builder autoStart() { this.interactive = false; return this; }

        public Builder ealArgs(String... a) { extraEal.addAll(List.of(a)); return this; }

        public Builder appArgs(String... a) { extraApp.addAll(List.of(a)); return this; }

        public Builder timeout(Duration t) { this.timeout = t; return this; }

        public Builder name(String n) { this.name = n; return this; }

        public Builder logDir(Path dir) { this.logDir = dir; return this; }

        public List<String> commandLine() {
            if (vdev == null) throw new IllegalStateException("choose virtioUser(...) or vhostBackend(...)");
            List<String> c = new ArrayList<>();
            // testpmd's stdout is a pipe here: line-buffer it, or nothing arrives until it exits
            Tools.STDBUF.find().ifPresent(b -> c.addAll(List.of(b.toString(), "-oL", "-eL")));
            c.addAll(List.of(Tools.TESTPMD.find().map(Path::toString).orElse("dpdk-testpmd"),
                    "--no-huge", "-m", String.valueOf(memoryMib), "-l", cores, "--no-pci",
                    // a private runtime directory per instance, so two testpmds (or two test JVMs) never meet
                    "--file-prefix=" + name, "--log-level=lib.eal:warning", "--vdev", vdev));
            c.addAll(extraEal);
            c.add("--");
            // no link check: a vhost back-end's link is down until its front-end connects (9 s wait)
            c.addAll(List.of("--total-num-mbufs=" + mbufs, "--forward-mode=" + forwardMode, "--disable-link-check"));
            if (txPacketLength != null) c.add("--txpkts=" + txPacketLength);
            if (burst != null) c.add("--burst=" + burst);
            c.add(interactive ? "-i" : "--auto-start");
            c.addAll(extraApp);
            return List.copyOf(c);
        }

        /** Starts testpmd; skips the calling test if dpdk-testpmd is missing. */
        public Testpmd start() {
            Tools.require(Tools.TESTPMD);
            List<String> cmd = commandLine();
            return new Testpmd(ProcessConsole.start(name, cmd, timeout, logDir.resolve(name + ".log")), interactive, cmd);
        }
    }
}
