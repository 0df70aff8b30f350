package dev.jvbus.connector.vhostuser.realclients;

import dev.jvbus.core.testing.TestNetns;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Linux guest (the {@link GuestImage}) under QEMU with TCG, its serial console on a pipe.
 * The guest's /init ({@code guest/init.sh}) prints {@code JVBUS-*} lines the tests wait for:
 * {@code JVBUS-BOOT}, {@code JVBUS-NET}, {@code JVBUS-CARRIER up|down},
 * {@code JVBUS-PING sent=N received=M}, {@code JVBUS-READY}, {@code JVBUS-DONE rc=N},
 * {@code JVBUS-POWEROFF}.
 *
 * <pre>{@code
 * try (QemuGuest g = QemuGuest.builder().vhostUser(socket).ip("192.0.2.10/24").peer("192.0.2.1")
 *         .steps("carrier", "ping:5").start()) {
 *     g.awaitLine("JVBUS-PING sent=(\\d+) received=(\\d+)", Duration.ofSeconds(30));
 * }
 * }</pre>
 *
 * QEMU runs under a hard timeout (it hangs for good if a vhost-user back-end does not answer),
 * and {@link #close()} kills it.
 */
public final class QemuGuest implements AutoCloseable {
    public static final Pattern BOOT = Pattern.compile("JVBUS-BOOT uptime=([0-9.]+)");
    public static final Pattern READY = Pattern.compile("JVBUS-READY");
    public static final Pattern DONE = Pattern.compile("JVBUS-DONE rc=(\\d+)");
    public static final Pattern PING = Pattern.compile("JVBUS-PING sent=(\\d+) received=(\\d+)");
    public static final Pattern CARRIER = Pattern.compile("JVBUS-CARRIER (up|down)");
    public static final Pattern POWEROFF = Pattern.compile("JVBUS-POWEROFF uptime=([0-9.]+)");
    /**
     * How long a guest may take from QEMU's start to user space and its first step (JVBUS-BOOT,
     * JVBUS-CARRIER): about 15 s under TCG on an idle 2-core machine, 52 s seen with a CPU hog on each
     * core and other builds beside it. A hang guard, not a speed claim.
     */
    public static final Duration BOOT_WAIT = Duration.ofMinutes(3);
    /** How long one guest step after boot may take on a loaded machine (a ping round, a command, power-off). */
    public static final Duration STEP_WAIT = Duration.ofSeconds(90);
    private static final AtomicInteger SEQ = new AtomicInteger();

    private final ProcessConsole console;
    private final List<String> commandLine;

    private QemuGuest(ProcessConsole console, List<String> commandLine) {
        this.console = console;
        this.commandLine = commandLine;
    }

    public static Builder builder() { return new Builder(); }

    public ProcessConsole console() { return console; }

    public List<String> commandLine() { return commandLine; }

    public Matcher awaitLine(String regex, Duration timeout) throws InterruptedException {
        return console.awaitLine(0, Pattern.compile(regex), timeout);
    }

    public Matcher awaitLine(Pattern pattern, Duration timeout) throws InterruptedException {
        return console.awaitLine(0, pattern, timeout);
    }

    /** The whole console so far (kernel messages, /init's lines, QEMU's own errors). */
    public String output() { return console.output(); }

    /** Milliseconds from starting QEMU until /init printed JVBUS-BOOT (user space reached), waiting for it. */
    public long bootMillis(Duration timeout) throws InterruptedException {
        int i = console.indexOf(0, BOOT, timeout);
        if (i < 0) awaitLine(BOOT, Duration.ZERO); // fails with the console
        return console.millisUntilLine(i);
    }

    /**
     * Runs a shell command in a guest started with the {@code ready} step (after JVBUS-READY) and
     * returns its output lines; fails if it does not finish in time.
     */
    public Result exec(String shellCommand, Duration timeout) throws InterruptedException {
        console.awaitLine(0, READY, timeout);
        int mark = console.lineCount();
        console.send(shellCommand);
        int done = console.indexOf(mark, DONE, timeout);
        if (done < 0) console.awaitLine(mark, DONE, Duration.ZERO);
        List<String> lines = console.lines();
        Matcher m = DONE.matcher(lines.get(done));
        m.find();
        return new Result(Integer.parseInt(m.group(1)), lines.subList(mark, done));
    }

    /** Asks a {@code ready} guest to power off and waits for QEMU to exit; its exit code. */
    public Optional<Integer> powerOff(Duration timeout) throws InterruptedException {
        if (console.alive()) {
            try {
                console.send("poweroff");
            } catch (RuntimeException ignored) {
                // QEMU is already gone
            }
        }
        return console.waitFor(timeout);
    }

    public Optional<Integer> waitForExit(Duration timeout) throws InterruptedException {
        return console.waitFor(timeout);
    }

    public boolean alive() { return console.alive(); }

    public void kill() { console.close(); }

    @Override public void close() { console.close(); }

    /** What a shell command printed in the guest, and its exit status. */
    public record Result(int exitCode, List<String> lines) { }

    public static final class Builder {
        private int memoryMib = 256;
        private int cpus = 1;
        private String mac = "52:54:00:12:34:56";
        private Path vhostUserSocket;
        private boolean vhostUserServer;
        private int vhostUserReconnectSeconds;
        private int queues = 1;
        private int vectors;   // 0: INTx. With MSI-X, QEMU 7.2 under TCG crashes (SIGSEGV) when the guest driver binds.
        private String accel = "tcg";
        private String tapIfname;
        private TestNetns netns;
        private final Map<String, String> params = new LinkedHashMap<>();
        private final List<String> steps = new ArrayList<>();
        private final List<String> extraArgs = new ArrayList<>();
        private final List<String> extraAppend = new ArrayList<>();
        private Duration timeout = BOOT_WAIT.plus(Duration.ofMinutes(2));   // outlasts a slow boot and its steps
        private String name = "qemu-" + SEQ.incrementAndGet();
        private Path logDir = Path.of("target", "real-clients");

        public Builder memoryMib(int mib) { this.memoryMib = mib; return this; }

        public Builder cpus(int n) { this.cpus = n; return this; }

        public Builder mac(String mac) { this.mac = mac; return this; }

        /**
         * A multiqueue NIC: {@code -netdev ...,queues=N} and {@code virtio-net-pci,mq=on}, so the guest driver negotiates
         * VIRTIO_NET_F_MQ and, with as many vCPUs, enables N pairs (Linux enables min(N, CPUs) by default).
         */
        public Builder queues(int n) { this.queues = n; return this; }

        /** {@code virtio-net-pci,vectors=N}: MSI-X vectors (default 0, see the field). */
        public Builder vectors(int n) { this.vectors = n; return this; }

        /** {@code -accel}: {@code tcg} (default: works everywhere) or {@code kvm}. */
        public Builder accel(String a) { this.accel = a; return this; }

        /**
         * A virtio-net-pci NIC whose back-end is the vhost-user server listening on {@code socket}
         * (QEMU connects as the front-end, the usual set-up with our connector as server).
         */
        public Builder vhostUser(Path socket) { this.vhostUserSocket = socket; this.vhostUserServer = false; return this; }

        /**
         * As {@link #vhostUser(Path)}, and QEMU connects again every {@code seconds} after the back-end went away
         * ({@code -chardev socket,...,reconnect=N}: QEMU 7.2's spelling; 8.2 and later also take {@code reconnect-ms}).
         */
        public Builder vhostUserReconnecting(Path socket, int seconds) {
            vhostUser(socket);
            this.vhostUserReconnectSeconds = seconds;
            return this;
        }

        /** As {@link #vhostUser(Path)}, but QEMU listens on {@code socket} and waits for the back-end to connect. */
        public Builder vhostUserServer(Path socket) { this.vhostUserSocket = socket; this.vhostUserServer = true; return this; }

        /** A virtio-net-pci NIC on QEMU's own TAP back-end (the baseline for throughput); the TAP must exist. */
        public Builder tap(String ifname) { this.tapIfname = ifname; return this; }

        /** Runs QEMU inside this network namespace (where its TAP port and iperf3 server are). */
        public Builder netns(TestNetns ns) { this.netns = ns; return this; }

        /** Guest eth0 address with prefix, e.g. {@code 192.0.2.10/24} (TEST-NET-1 only). */
        public Builder ip(String cidr) { return param("ip", cidr); }

        /** The address ping and iperf3 talk to. */
        public Builder peer(String address) { return param("peer", address); }

        /** A {@code jvbus.<key>=<value>} kernel parameter (no spaces). */
        public Builder param(String key, String value) {
            if (value.chars().anyMatch(Character::isWhitespace)) throw new IllegalArgumentException("no spaces in " + key + "=" + value);
            params.put(key, value);
            return this;
        }

        /** Steps /init runs in order before powering off: carrier, ping:N, iperf3:S, sleep:S, ready. */
        public Builder steps(String... s) { steps.addAll(List.of(s)); return this; }

        /** A shell script run as one step (passed base64-encoded on the kernel command line, 2 KiB in all). */
        public Builder script(String shell) {
            steps.add("sh:" + Base64.getEncoder().encodeToString(shell.getBytes(StandardCharsets.UTF_8)));
            return this;
        }

        /** More kernel command line words. */
        public Builder append(String... words) { extraAppend.addAll(List.of(words)); return this; }

        /** More QEMU arguments (e.g. {@code -incoming unix:/tmp/mig.sock}). */
        public Builder qemuArgs(String... args) { extraArgs.addAll(List.of(args)); return this; }

        /** Hard limit on QEMU's life (default 60 s); it is killed after that. */
        public Builder timeout(Duration t) { this.timeout = t; return this; }

        public Builder name(String n) { this.name = n; return this; }

        /** Where the console log goes (default {@code target/real-clients}). */
        public Builder logDir(Path dir) { this.logDir = dir; return this; }

        /** The QEMU command line this builder describes. */
        public List<String> commandLine(GuestImage image) {
            List<String> c = new ArrayList<>(List.of(Tools.QEMU.find().map(Path::toString).orElse("qemu-system-x86_64"),
                    "-name", name, "-accel", accel, "-M", "pc", "-cpu", "max", "-smp", String.valueOf(cpus),
                    "-m", memoryMib + "M",
                    "-object", "memory-backend-memfd,id=mem,size=" + memoryMib + "M,share=on",
                    "-numa", "node,memdev=mem",
                    "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot"));
            Tools.qboot().ifPresent(q -> c.addAll(List.of("-bios", q.toString())));
            c.addAll(List.of("-kernel", image.vmlinux().toString(), "-initrd", image.initramfs().toString()));
            // no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can miss its
            // ticks and panic ("IO-APIC + timer doesn't work!"); seen with a CPU hog beside the tests.
            List<String> append = new ArrayList<>(List.of("console=ttyS0", "loglevel=4", "panic=-1", "no_timer_check"));
            params.forEach((k, v) -> append.add("jvbus." + k + "=" + v));
            if (!steps.isEmpty()) append.add("jvbus.cmd=" + String.join(",", steps));
            append.addAll(extraAppend);
            String line = String.join(" ", append);
            if (line.length() > 2000) throw new IllegalArgumentException("kernel command line too long (" + line.length() + " > 2000)");
            c.addAll(List.of("-append", line));
            if (vhostUserSocket != null) {
                c.addAll(List.of("-chardev", "socket,id=c0,path=" + vhostUserSocket + (vhostUserServer ? ",server=on" : "")
                                + (vhostUserReconnectSeconds > 0 ? ",reconnect=" + vhostUserReconnectSeconds : ""),
                        "-netdev", "vhost-user,id=n0,chardev=c0" + (queues > 1 ? ",queues=" + queues : "")));
            } else if (tapIfname != null) {
                c.addAll(List.of("-netdev", "tap,id=n0,ifname=" + tapIfname + ",script=no,downscript=no"));
            }
            if (vhostUserSocket != null || tapIfname != null) {
                // vectors=0: with MSI-X, QEMU 7.2 under TCG crashes when the guest driver binds.
                c.addAll(List.of("-device", "virtio-net-pci,netdev=n0,mac=" + mac
                        + (queues > 1 ? ",mq=on" : "") + ",vectors=" + vectors));
            } else {
                c.addAll(List.of("-nic", "none"));
            }
            c.addAll(extraArgs);
            return List.copyOf(c);
        }

        /** Starts QEMU; skips the calling test if QEMU or the guest image is missing. */
        public QemuGuest start() {
            GuestImage image = GuestImage.require();
            Tools.require(Tools.QEMU);
            List<String> cmd = netns == null ? commandLine(image) : netns.wrap(commandLine(image));
            ProcessConsole console = ProcessConsole.start(name, cmd, timeout, logDir.resolve(name + ".log"));
            return new QemuGuest(console, cmd);
        }
    }
}
