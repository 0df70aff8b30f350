package dev.jvbus.bench;

import dev.jvbus.bench.BenchOptions.Kind;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.connector.vhostuser.realclients.GuestImage;
import dev.jvbus.connector.vhostuser.realclients.ProcessConsole;
import dev.jvbus.connector.vhostuser.realclients.QemuGuest;
import dev.jvbus.connector.vhostuser.realclients.Tools;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.core.sys.TapDevice;
import dev.jvbus.core.testing.TestNetns;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.TapPort;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Guest TCP throughput with iperf3, QEMU's own TAP back-end against ours (issue 6, "Benchmark (not a
 * test)", last bullet). The same guest (guest/build-guest.sh: Debian kernel, busybox, iperf3; 1 vCPU
 * under TCG, 256 MiB) runs {@code ping} and then an {@code iperf3 -c 192.0.2.1} client, guest to host,
 * against an {@code iperf3 -s} inside a network namespace that holds a TAP with 192.0.2.1/24:
 * <ul>
 *   <li>qemu-tap: {@code -netdev tap} + virtio-net-pci, QEMU's defaults (it negotiates TSO/UFO and
 *       checksum offload with the guest and the TAP, so the guest sends up to 64 KiB segments).</li>
 *   <li>qemu-tap-nogso: the same with the segmentation offloads switched off
 *       ({@code -global virtio-net-pci.host_tso4=off,...}), i.e. about the feature set our model offers
 *       (checksum offload, MRG_RXBUF, no TSO/UFO): it separates "no GSO" from "our back-end".</li>
 *   <li>ours: {@code -netdev vhost-user} to this JVM's {@link VhostUserBackend} serving a virtio-net
 *       device on an L2 switch whose other port is a {@link TapPort}.</li>
 *   <li>g2g-bridge: guest to guest, two QEMUs each on QEMU's own {@code -netdev tap} (vhost=off, QEMU's
 *       default, offloads on: both guests negotiate TSO), the two TAPs on a Linux bridge in a namespace:
 *       what users take to connect two guests on one host.</li>
 *   <li>g2g-ours: guest to guest, two QEMUs each on {@code -netdev vhost-user} to its own virtio-net device
 *       of this JVM's bus, both devices on one L2 switch (TSO end to end, super-frames switched whole).</li>
 * </ul>
 * In the g2g sides guest 2 runs {@code iperf3 -s} and guest 1 the client (192.0.2.21 to 192.0.2.22), driven
 * over their consoles; the CPU column then sums both QEMUs. Ratios are the median of per-round ratios
 * (ours / qemu-tap, g2g-ours / g2g-bridge) with their spread ({@link Stats.Ratio}).
 * Rounds alternate the sides, so load changes hit all of them; one short unreported warm-up round per
 * side comes first (JIT of our path, page cache for the image). Each side's median over the rounds,
 * and the ratio of the medians; a round where iperf3 printed no receiver figure (its control
 * connection broke) is shown as failed and left out. Also the median ping RTT, and the CPU that QEMU
 * (all its threads) and this JVM (our back-end) used during the iperf3 window, in % of one core: with
 * QEMU near 100% the guest's vCPU is the limit. Logs: {@code benchmarks/target/bench-guest/}.
 * Not a test: nothing is asserted.
 *
 * <p>The guests boot once and stay up, and each round is one iperf3 run over a guest's console ({@link #liveRounds}):
 * partners seconds apart instead of a guest boot apart (the guest-to-host sides first, then the g2g sides).
 * {@code --boot-per-round} boots them for each round instead, as before session 18.
 *
 * <p>Run: {@code ./jvbus bench-guest [--rounds N] [--seconds S] [--pings N] [--sides qemu-tap,qemu-tap-nogso,ours,g2g-bridge,g2g-ours] [--no-warmup] [--boot-per-round]}
 */
public final class GuestBench {
    /**
     * Our TAP: read by the poll group that serves the device's tx queue ({@code -Djvbus.bench.tapPoll=group}, the
     * default: one thread writes the guest's frames into the TAP and reads the kernel's answers, as QEMU's main loop
     * does), or by a reader thread of its own ({@code own}, as before). The group is picked before the device's queue
     * starts; the TAP does not count in its size, so the queue picks the same group.
     */
    /** The poll group reading our TAP (null with {@code tapPoll=own}): its wait's counters are printed at the end. */
    private static dev.jvbus.core.ring.PollGroup tapGroup;

    private static TapPort openTap(Container c, L2Switch sw, TestNetns ns) {
        String mode = System.getProperty("jvbus.bench.tapPoll", "group");
        TapDevice td = TapDevice.create("jvbtap0", ns.namespace(), true);
        return switch (mode) {
            case "group" -> TapPort.open(sw, td, null, tapGroup = c.resource(PollGroups.RESOURCE).pick());
            case "own" -> TapPort.open(sw, td);
            default -> throw new IllegalArgumentException("jvbus.bench.tapPoll must be 'group' or 'own': " + mode);
        };
    }

    private static final String MAC = "52:54:00:12:34:56";
    private static final String PEER = "192.0.2.1";
    private static final Pattern IPERF = Pattern.compile("JVBUS-IPERF3 sender_mbps=(\\S+) receiver_mbps=(\\S+)");
    private static final Pattern RTT = Pattern.compile("bytes from .*time=([0-9.]+) ms");
    private static final Pattern SENDER = Pattern.compile("sec\\s+\\S+ \\S?Bytes\\s+\\S+ \\S?bits/sec\\s+(\\d+)\\s+sender");
    private static final Path LOGS = Path.of("benchmarks", "target", "bench-guest");
    private static final String G2G_MAC1 = "52:54:00:12:34:71", G2G_MAC2 = "52:54:00:12:34:72";
    private static final String G2G_IP1 = "192.0.2.21", G2G_IP2 = "192.0.2.22";
    private static final String G2G_TAP1 = "jvbga", G2G_TAP2 = "jvbgb";
    private static final String[] NO_GSO = {"host_tso4", "host_tso6", "host_ecn", "host_ufo", "guest_tso4", "guest_tso6", "guest_ecn", "guest_ufo"};

    private GuestBench() {}

    /** CPU shares are percent of one core over the iperf3 window (from the guest's ping summary line to its iperf3 line). */
    record Round(double receiverMbps, double senderMbps, long retransmits, List<Double> rttMs, double qemuCpuPct, double jvmCpuPct,
                 GuestCounts guest) {
        Round(double receiverMbps, double senderMbps, long retransmits, List<Double> rttMs, double qemuCpuPct, double jvmCpuPct) {
            this(receiverMbps, senderMbps, retransmits, rttMs, qemuCpuPct, jvmCpuPct, GuestCounts.NONE);
        }
        /** iperf3 gave no receiver figure (it prints 0 when the control connection broke): shown, left out of medians. */
        boolean failed() { return receiverMbps <= 0; }
    }

    /**
     * What the guest counted over its iperf3 run (from /proc/interrupts and /proc/stat read before and after it): its
     * virtio-net rx and tx interrupts and how much of the time its one vCPU sat idle. Under TCG the vCPU is the
     * bottleneck, so an idle vCPU is a guest that waited for the back-end (completions, ACKs), and every interrupt is
     * guest work per byte; -1 when the guest did not print them.
     */
    record GuestCounts(long irqs, double idlePct, double vcpuPct, long tapFrames, long tapBytes) {
        static final GuestCounts NONE = new GuestCounts(-1, Double.NaN, Double.NaN, 0, 0);

        GuestCounts withVcpu(double pct) { return new GuestCounts(irqs, idlePct, pct, tapFrames, tapBytes); }

        /** The frames (and their bytes) the host's TAP took from the guest's side over the window: the guest's GSO size. */
        GuestCounts withTap(long frames, long bytes) { return new GuestCounts(irqs, idlePct, vcpuPct, frames, bytes); }

        @Override
        public String toString() {
            return String.format(java.util.Locale.ROOT, "guest: %d virtio irqs (%.1f per MB), idle %.0f%%; vCPU thread %.0f%% of a core; TAP took %d frames of %d B on average",
                    irqs, tapBytes == 0 ? Double.NaN : irqs * 1e6 / tapBytes, idlePct, vcpuPct, tapFrames, tapBytes / Math.max(1, tapFrames));
        }
    }

    /** The TAP's RX packets and bytes (what the kernel took in through it) as {@code ip -s link} shows them. */
    static long[] tapRx(TestNetns ns, String ifname) {
        String[] lines = ns.ip("-s", "link", "show", ifname).split("\n");
        for (int i = 0; i + 1 < lines.length; i++) {
            if (lines[i].strip().startsWith("RX:")) {
                String[] f = lines[i + 1].strip().split("\\s+");
                return new long[] {Long.parseLong(f[1]), Long.parseLong(f[0])};
            }
        }
        return new long[] {0, 0};
    }

    /** The guest step printing its counters: one JVBUS-IRQ line per virtio interrupt (count, name), one JVBUS-CPU line (/proc/stat). */
    private static final String COUNTS_SCRIPT_BASE64 = java.util.Base64.getEncoder().encodeToString(
            ("grep virtio /proc/interrupts | while read n c rest; do echo \"JVBUS-IRQ $c ${rest##* }\"; done\n"
                    + "echo \"JVBUS-CPU $(head -1 /proc/stat)\"\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    private static final String COUNTS_STEP = "sh:" + COUNTS_SCRIPT_BASE64;
    /** The same printout as a console command of a {@code ready} guest (live rounds). */
    private static final String COUNTS_COMMAND = "echo " + COUNTS_SCRIPT_BASE64 + " | base64 -d | sh";
    private static final Pattern IRQ = Pattern.compile("JVBUS-IRQ (\\d+) virtio");
    private static final Pattern CPU = Pattern.compile("JVBUS-CPU cpu\\s+(\\d+) (\\d+) (\\d+) (\\d+) (\\d+) (\\d+) (\\d+)");

    /** The guest's counters from its console: the first printout (before iperf3) against the second (after). */
    static GuestCounts guestCounts(List<String> lines) {
        // All virtio interrupt lines summed per printout: the test QEMU runs virtio-net-pci with vectors=0 (INTx, one
        // "virtio0" line for every queue; see QemuGuest), with MSI-X there would be one per queue.
        long[] irq = new long[2];
        long[][] cpu = new long[2][2];   // [printout][idle, total]
        int cpuSeen = 0;
        for (String line : lines) {
            Matcher i = IRQ.matcher(line);
            if (i.find() && cpuSeen < 2) irq[cpuSeen] += Long.parseLong(i.group(1));   // the CPU line ends each printout
            Matcher c = CPU.matcher(line);
            if (c.find() && cpuSeen < 2) {
                long total = 0;
                for (int g = 1; g <= 7; g++) total += Long.parseLong(c.group(g));
                cpu[cpuSeen][0] = Long.parseLong(c.group(4)) + Long.parseLong(c.group(5));   // idle + iowait
                cpu[cpuSeen][1] = total;
                cpuSeen++;
            }
        }
        if (cpuSeen < 2) return GuestCounts.NONE;
        return new GuestCounts(irq[1] - irq[0], 100.0 * (cpu[1][0] - cpu[0][0]) / Math.max(1, cpu[1][1] - cpu[0][1]), Double.NaN, 0, 0);
    }

    public static void main(String[] args) throws Exception {
        BenchOptions opts = BenchOptions.parseOrExit(
                "usage: bench-guest [--rounds N] [--seconds S] [--pings N] [--sides qemu-tap,qemu-tap-nogso,ours,g2g-bridge,g2g-ours] [--no-warmup] [--boot-per-round]\n"
                        + "  the guests stay up, 15 rounds x iperf3 4 s by default; with --boot-per-round they boot for each round, 3 rounds x 8 s",
                Map.of("--rounds", Kind.INT, "--seconds", Kind.INT, "--pings", Kind.INT, "--sides", Kind.WORDS, "--no-warmup", Kind.SWITCH,
                        "--boot-per-round", Kind.SWITCH), args);
        boolean warmup = !opts.has("--no-warmup"), live = !opts.has("--boot-per-round");
        // Live rounds are one iperf3 run each, seconds apart: many short ones say more than a few long ones.
        int rounds = opts.intValue("--rounds", live ? 15 : 3), seconds = opts.intValue("--seconds", live ? 4 : 8), pings = opts.intValue("--pings", 5);
        List<String> sides = opts.words("--sides", new ArrayList<>(List.of("qemu-tap", "qemu-tap-nogso", "ours", "g2g-bridge", "g2g-ours")));
        GuestImage image = GuestImage.require();
        Tools.require(Tools.QEMU, Tools.IPERF3, Tools.IP);
        if (!image.hasIperf3()) throw new IllegalStateException("the guest image has no iperf3 (install iperf3 on the host and rebuild: guest/build-guest.sh)");
        Files.createDirectories(LOGS);
        System.out.printf("bench-guest: %s, %d cores, load %s; guest %s, 1 vCPU TCG, 256 MiB; %s%n",
                LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")), Runtime.getRuntime().availableProcessors(),
                Files.readString(Path.of("/proc/loadavg")).strip(), image.kernelVersion(),
                String.format("%s: %d rounds x iperf3 %d s + ping x%d", live ? "live (the guests stay up)" : "a guest boot per round",
                        rounds, seconds, pings));

        Container c = Bus.withDiscoveredModels().createContainer("bench-guest");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", "guestnet", "mac", MAC));
        L2Switch sw = Networks.of(c).getOrCreate("guestnet");
        // guest to guest through our switch: two more devices on a network of their own
        Device g1 = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", "g2gnet", "mac", G2G_MAC1));
        Device g2 = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", "g2gnet", "mac", G2G_MAC2));
        L2Switch g2gSwitch = Networks.of(c).getOrCreate("g2gnet");
        Path sock = Files.createTempDirectory("jvbus-bench-guest").resolve("vhost.sock");
        Path g2gSock1 = sock.resolveSibling("g2g-1.sock"), g2gSock2 = sock.resolveSibling("g2g-2.sock");
        Map<String, List<Round>> results = new LinkedHashMap<>();
        sides.forEach(s -> results.put(s, new ArrayList<>()));
        try (TestNetns qemuNs = TestNetns.createOrSkip().tap("jvbtap0", PEER + "/24");
             TestNetns nogsoNs = TestNetns.createOrSkip().tap("jvbtap0", PEER + "/24");
             TestNetns oursNs = TestNetns.createOrSkip();
             TestNetns bridgeNs = TestNetns.createOrSkip();
             TapPort tap = openTap(c, sw, oursNs);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock);
             VhostUserBackend b1 = VhostUserBackend.serve(g1, g2gSock1);
             VhostUserBackend b2 = VhostUserBackend.serve(g2, g2gSock2)) {
            oursNs.address("jvbtap0", PEER + "/24");
            // -Djvbus.bench.probeTap=true: count the tx batches after which the kernel's answer is already on the TAP
            // (TapStats.readableAfterWrites, printed with the TAP's stats); off by default, it costs a syscall per batch
            tap.probeAfterWrites(Boolean.getBoolean("jvbus.bench.probeTap"));
            // the Linux bridge contender: two kernel TAPs (QEMU's -netdev tap opens them) on br0; STP off, no forward delay
            bridgeNs.ip("link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0");
            bridgeNs.ip("link", "set", "br0", "up");
            for (String t : List.of(G2G_TAP1, G2G_TAP2)) {
                bridgeNs.ip("tuntap", "add", t, "mode", "tap");
                bridgeNs.ip("link", "set", t, "master", "br0");
                bridgeNs.ip("link", "set", t, "up");
            }
            G2g g2g = new G2g(g2gSock1, g2gSock2, bridgeNs);
            HostSides host = new HostSides(qemuNs, nogsoNs, oursNs, sock);
            List<String> hostSides = sides.stream().filter(s -> !s.startsWith("g2g-")).toList();
            List<String> g2gSides = sides.stream().filter(s -> s.startsWith("g2g-")).toList();
            if (live) {
                // guest to host first, then guest to guest: at most four guests up at once
                Duration life = QemuGuest.BOOT_WAIT.plus(Duration.ofSeconds((rounds + 1L) * sides.size() * (seconds + pings + 40) + 120));
                if (!hostSides.isEmpty()) liveRounds(hostSides, rounds, seconds, pings, warmup, side -> HostGuest.start(side, host, life), results);
                if (!g2gSides.isEmpty()) liveRounds(g2gSides, rounds, seconds, pings, warmup,
                        side -> G2gPair.start(side, "bench-live-" + side, g2g, false, life), results);
            } else {
                if (warmup) {
                    for (String side : sides) {
                        Round w = round(side, "warmup", host, g2g, 3, 2);
                        System.out.printf("  warm-up %-15s %8.1f Mbit/s (not counted)%n", side, w.receiverMbps());
                    }
                }
                for (int r = 1; r <= rounds; r++) {
                    // A, B, C then C, B, A: no side always runs right after the same neighbour (whose QEMUs may still be exiting)
                    for (String side : r % 2 == 1 ? sides : sides.reversed()) {
                        Round res = round(side, "r" + r, host, g2g, seconds, pings);
                        results.get(side).add(res);
                        printRound(r, side, res);
                    }
                }
            }
            System.out.printf("  ours, all rounds: %s; vhost-user sessions %d%n", tap.stats(), backend.sessionsStarted());
            if (tapGroup != null) {
                var w = tapGroup.doorbellWait();
                System.out.printf("  ours, all rounds, %s (tx queue + TAP reads): waits ended by the spin %d, by the arm's re-check %d, sleeps %d (%d ended by a doorbell or the TAP); spin now %d ns, grew %d, shrank %d%n",
                        tapGroup.name(), w.spinHits(), w.armHits(), w.sleeps(), w.doorbellWakes(), w.spinNanos(), w.budget().grows(), w.budget().shrinks());
            }
            // What the guest's driver saw of us: per ring, buffers completed, kicks taken, interrupts sent and suppressed
            // (every publish makes one notify decision: sent + suppressed = publishes, so buffers per publish = batch size).
            for (int q = 0; q <= 1; q++) {
                var qc = device.queueCounters(q);
                long publishes = qc.notificationsSent() + qc.notificationsSuppressed();
                System.out.printf("  ours, all rounds, %s ring: %d buffers, %d kicks, %d publishes (%.2f buffers each), %d interrupts sent, %d suppressed%n",
                        q == 0 ? "rx" : "tx", qc.buffers(), qc.kicks(), publishes, qc.buffers() / (double) Math.max(1, publishes),
                        qc.notificationsSent(), qc.notificationsSuppressed());
            }
            if (sides.contains("g2g-ours")) {
                for (var p : g2gSwitch.ports()) {
                    System.out.printf("  g2g-ours, all rounds: %s: %d frames to it, %d of them super-frames whole, %d cut by the switch, %d bytes per frame; %s%n",
                            p.name(), p.framesOut(), p.superFramesOut(), p.framesSegmented(), p.bytesOut() / Math.max(1, p.framesOut()), p.stats().drops());
                }
            }
        } finally {
            Files.deleteIfExists(g2gSock1);
            Files.deleteIfExists(g2gSock2);
            Files.deleteIfExists(sock);
            Files.deleteIfExists(sock.getParent());
        }
        report(results, rounds);
    }

    /** Where the g2g sides' guests attach: our two vhost-user sockets, and the namespace with the Linux bridge. */
    record G2g(Path sock1, Path sock2, TestNetns bridgeNs) { }

    private static Round round(String side, String tag, HostSides host, G2g g2g, int seconds, int pings) throws Exception {
        if (side.startsWith("g2g-")) return guestToGuest(side, tag, g2g, seconds, pings);
        TestNetns serverNs = host.ns(side);
        String name = "bench-" + side + "-" + tag;
        try (ProcessConsole server = iperf3Server(serverNs, name, true, Duration.ofSeconds(seconds + 120))) {
            QemuGuest.Builder b = host.guest(side, name, Duration.ofSeconds(seconds + pings + 90))
                    .steps("carrier", "ping:" + pings, COUNTS_STEP, "iperf3:" + seconds, COUNTS_STEP, "sleep:2");
            // sleep:2 keeps QEMU alive for the CPU sample taken when the iperf3 line arrives
            try (QemuGuest guest = b.start()) {
                guest.awaitLine(QemuGuest.PING, Duration.ofSeconds(pings + 75));
                Window w = new Window(side, tag, qemuProcess(guest), serverNs);
                Matcher m = guest.awaitLine(IPERF, Duration.ofSeconds(seconds + 60));
                Window.Use use = w.end();
                Optional<Integer> rc = guest.waitForExit(Duration.ofSeconds(20));
                if (rc.isEmpty()) guest.kill();
                List<String> lines = guest.console().lines();   // with the counts printed after iperf3
                return use.round(Double.parseDouble(m.group(2)), Double.parseDouble(m.group(1)), retransmits(lines), rtts(lines),
                        guestCounts(lines));
            }
        }
    }

    /** An {@code iperf3 -s} on the peer's address in {@code ns}, listening when this returns; one-shot or for many clients. */
    private static ProcessConsole iperf3Server(TestNetns ns, String name, boolean oneShot, Duration life) throws InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Tools.IPERF3.path().toString(), "-s", "-B", PEER, "--forceflush"));
        if (oneShot) cmd.add("-1");
        ProcessConsole server = ProcessConsole.start("iperf3-" + name, ns.wrap(cmd), life, LOGS.resolve("iperf3-server-" + name + ".log"));
        try {
            server.awaitLine("Server listening", Duration.ofSeconds(10));
        } catch (RuntimeException | InterruptedException e) {
            server.close();
            throw e;
        }
        return server;
    }

    /**
     * Where the guest-to-host sides' guests attach: each QEMU TAP side has a namespace of its own holding its TAP
     * (QEMU opens it) and its iperf3 server, so their guests can be up at once; ours has the namespace of our
     * {@link TapPort} and our vhost-user socket. Same guest, MAC and address on every side; only the netdev differs.
     */
    record HostSides(TestNetns tapNs, TestNetns nogsoNs, TestNetns oursNs, Path sock) {
        /** The namespace holding the TAP (and the iperf3 server) the side's guest talks to. */
        TestNetns ns(String side) {
            return switch (side) {
                case "ours" -> oursNs;
                case "qemu-tap" -> tapNs;
                case "qemu-tap-nogso" -> nogsoNs;
                default -> throw new IllegalArgumentException("unknown side " + side + " (qemu-tap, qemu-tap-nogso, ours)");
            };
        }

        QemuGuest.Builder guest(String side, String name, Duration life) {
            QemuGuest.Builder b = QemuGuest.builder().name(name).logDir(LOGS).mac(MAC).qemuArgs("-name", "debug-threads=on")
                    .ip("192.0.2.10/24").peer(PEER).timeout(life);
            if (side.equals("ours")) return b.vhostUser(sock);
            b.netns(ns(side)).tap("jvbtap0");
            if (side.equals("qemu-tap-nogso")) for (String f : NO_GSO) b.qemuArgs("-global", "virtio-net-pci." + f + "=off");
            return b;
        }
    }

    /**
     * Live rounds (the default): each side's guests boot once and stay up, their iperf3 servers too, and the rounds
     * alternate the sides' iperf3 runs over the guests' consoles (A, B, B, A, ...). A round is then one iperf3 run
     * apart from its partner, not a guest boot: on these machines the host's speed flips within seconds, so close
     * partners give per-round ratios that measure the back-ends rather than the moment. The idle guests beside the
     * running ones are the same for every side. The sides start together; they are all powered off at the end.
     */
    private static void liveRounds(List<String> sides, int rounds, int seconds, int pings, boolean warmup,
                                   LiveSide.Start start, Map<String, List<Round>> results) throws Exception {
        Map<String, LiveSide> live = new LinkedHashMap<>();
        try {
            for (String side : sides) live.put(side, start.side(side));
            for (LiveSide l : live.values()) l.ready();
            if (warmup) {
                for (String side : sides) {
                    Round w = live.get(side).round("warmup", 3, 2);
                    System.out.printf("  warm-up %-15s %8.1f Mbit/s (not counted)%n", side, w.receiverMbps());
                }
            }
            for (int r = 1; r <= rounds; r++) {
                for (String side : r % 2 == 1 ? sides : sides.reversed()) {
                    Round res = live.get(side).round("r" + r, seconds, pings);
                    results.get(side).add(res);
                    printRound(r, side, res);
                }
            }
        } finally {
            for (LiveSide l : List.copyOf(live.values()).reversed()) l.close();
        }
    }

    private static void printRound(int r, String side, Round res) {
        System.out.printf("  round %d %-15s %8.1f Mbit/s received (sender %.1f, %d retransmits), ping median %.3f ms; CPU during iperf3: QEMU %.0f%%, this JVM %.0f%%; %s; %.0f Mbit/s per vCPU core%n",
                r, side, res.receiverMbps(), res.senderMbps(), res.retransmits(), median(res.rttMs()), res.qemuCpuPct(), res.jvmCpuPct(),
                res.guest(), res.receiverMbps() / (res.guest().vcpuPct() / 100));
    }

    private static List<Double> rtts(List<String> lines) {
        List<Double> rtt = new ArrayList<>();
        for (String line : lines) {
            Matcher p = RTT.matcher(line);
            if (p.find()) rtt.add(Double.parseDouble(p.group(1)));
        }
        return rtt;
    }

    /** /init's iperf3 line: {sender, receiver} Mbit/s; zeros if it printed none (the run failed). */
    private static double[] iperf3Mbps(List<String> lines) {
        double[] mbps = new double[2];
        for (String line : lines) {
            Matcher m = IPERF.matcher(line);
            if (m.find()) {
                mbps[0] = Double.parseDouble(m.group(1));
                mbps[1] = Double.parseDouble(m.group(2));
            }
        }
        return mbps;
    }

    /** iperf3's sender retransmits from its summary line; -1 if it printed none. */
    private static long retransmits(List<String> lines) {
        long retr = -1;
        for (String line : lines) {
            Matcher s = SENDER.matcher(line);
            if (s.find()) retr = Long.parseLong(s.group(1));
        }
        return retr;
    }

    /**
     * What the host spends over a guest's iperf3 run: CPU of QEMU (all threads, and its vCPU thread alone) and of
     * this JVM, the machine's busy share, the TAP's frames and bytes from the guest, and each thread's use against
     * the vCPU's (printed at {@link #end}).
     */
    private static final class Window {
        private final String side, tag;
        private final Optional<ProcessHandle> qemu;
        private final TestNetns serverNs;
        private final long t0, jvm0, qemu0;
        private final Map<Long, Long> vcpu0;
        private final long[] tap0, machine0;
        private final ThreadCpu jvmThreads, qemuThreads;
        private final ThreadCpu.Placement placement;

        Window(String side, String tag, Optional<ProcessHandle> qemu, TestNetns serverNs) {
            this.side = side;
            this.tag = tag;
            this.qemu = qemu;
            this.serverNs = serverNs;
            t0 = System.nanoTime();
            jvm0 = cpuNanos(ProcessHandle.current());
            qemu0 = qemu.map(GuestBench::cpuNanos).orElse(0L);
            vcpu0 = qemu.map(GuestBench::threadTicks).orElse(Map.of());
            tap0 = tapRx(serverNs, "jvbtap0");
            machine0 = machineTicks();
            jvmThreads = ThreadCpu.start(ProcessHandle.current().pid());
            qemuThreads = qemu.map(p -> ThreadCpu.start(p.pid())).orElse(null);
            placement = qemu.map(GuestBench::placement).orElse(null);
        }

        /** The use over the window, its threads printed. */
        Use end() throws InterruptedException {
            long wall = System.nanoTime() - t0, jvm1 = cpuNanos(ProcessHandle.current()), qemu1 = qemu.map(GuestBench::cpuNanos).orElse(0L);
            Map<Long, Long> vcpu1 = qemu.map(GuestBench::threadTicks).orElse(Map.of());
            long[] tap1 = tapRx(serverNs, "jvbtap0");
            long[] machine1 = machineTicks();
            if (placement != null) placement.close();
            List<ThreadCpu.Use> jvmUse = jvmThreads.end(placement);
            List<ThreadCpu.Use> qemuUse = qemuThreads == null ? List.of() : qemuThreads.end(placement);
            long bytes = tap1[1] - tap0[1];
            System.out.printf("    %s %s threads over %.1f s (machine: %.0f%% busy of 2 cores, niced tasks %.0f%%):%s%s%n", side, tag, wall / 1e9,
                    100.0 * (machine1[0] - machine0[0]) / Math.max(1, machine1[2] - machine0[2]),
                    100.0 * (machine1[1] - machine0[1]) / Math.max(1, machine1[2] - machine0[2]),
                    ThreadCpu.describe("QEMU", qemuUse, wall, bytes, 1.0), ThreadCpu.describe("JVM", jvmUse, wall, bytes, 1.0));
            return new Use(qemu.isPresent() ? 100.0 * (qemu1 - qemu0) / wall : Double.NaN, 100.0 * (jvm1 - jvm0) / wall,
                    100.0 * vcpuDelta(vcpu0, vcpu1) * 10_000_000L / wall, tap1[0] - tap0[0], bytes);
        }

        record Use(double qemuCpuPct, double jvmCpuPct, double vcpuPct, long tapFrames, long tapBytes) {
            Round round(double receivedMbps, double sentMbps, long retransmits, List<Double> rtt, GuestCounts guest) {
                return new Round(receivedMbps, sentMbps, retransmits, rtt, qemuCpuPct, jvmCpuPct,
                        guest.withVcpu(vcpuPct).withTap(tapFrames, tapBytes));
            }
        }
    }

    /** One guest-to-guest round booted for itself: both guests boot, one iperf3 run, both power off. */
    private static Round guestToGuest(String side, String tag, G2g g2g, int seconds, int pings) throws Exception {
        try (G2gPair pair = G2gPair.start(side, "bench-" + side + "-" + tag, g2g, true,
                QemuGuest.BOOT_WAIT.plus(Duration.ofSeconds(seconds + pings + 180)))) {
            pair.ready();
            return pair.round(tag, seconds, pings);
        }
    }

    /**
     * A side whose guests stay up across rounds ({@link #liveRounds}): started (QEMU launched), then ready (booted,
     * servers listening), then one iperf3 run per {@link #round}; closing powers its guests off.
     */
    private interface LiveSide extends AutoCloseable {
        /** Starts a side's guests (and servers) by its name. */
        @FunctionalInterface interface Start { LiveSide side(String name) throws Exception; }

        void ready() throws Exception;

        Round round(String tag, int seconds, int pings) throws Exception;
    }

    /** A guest-to-host side's guest and the iperf3 server it sends to, in the side's namespace. */
    private record HostGuest(String side, QemuGuest guest, ProcessConsole server, TestNetns ns) implements LiveSide {
        static HostGuest start(String side, HostSides host, Duration life) throws InterruptedException {
            TestNetns ns = host.ns(side);
            ProcessConsole server = iperf3Server(ns, "live-" + side, false, life);
            try {
                return new HostGuest(side, host.guest(side, "bench-live-" + side, life).steps("carrier", "ready").start(), server, ns);
            } catch (RuntimeException e) {
                server.close();
                throw e;
            }
        }

        @Override public void ready() throws InterruptedException { guest.awaitLine(QemuGuest.READY, QemuGuest.BOOT_WAIT); }

        /** Ping, the guest's counters, iperf3 (the measured window), its counters again. */
        @Override
        public Round round(String tag, int seconds, int pings) throws Exception {
            List<String> ping = guest.exec("do_ping " + pings, Duration.ofSeconds(pings * 3L + 60)).lines();
            List<String> counts = new ArrayList<>(guest.exec(COUNTS_COMMAND, QemuGuest.STEP_WAIT).lines());
            Window w = new Window(side, tag, qemuProcess(guest), ns);
            List<String> run = guest.exec("do_iperf3 " + seconds, Duration.ofSeconds(seconds + 120)).lines();
            Window.Use use = w.end();
            counts.addAll(guest.exec(COUNTS_COMMAND, QemuGuest.STEP_WAIT).lines());
            double[] mbps = iperf3Mbps(run);
            return use.round(mbps[1], mbps[0], retransmits(run), rtts(ping), guestCounts(counts));
        }

        @Override
        public void close() throws InterruptedException {
            stop(guest);
            server.close();
        }
    }

    /**
     * The two guests of a g2g side: guest 1 (the client) runs /init's iperf3 step against an {@code iperf3 -s} in
     * guest 2, both driven over their consoles; one-shot servers for a booted round, a lasting one for live rounds.
     */
    private record G2gPair(String side, String name, QemuGuest client, QemuGuest server, boolean oneShot) implements LiveSide {
        static G2gPair start(String side, String name, G2g g2g, boolean oneShot, Duration life) {
            QemuGuest.Builder a = QemuGuest.builder().name(name + "-1").logDir(LOGS).mac(G2G_MAC1).ip(G2G_IP1 + "/24").peer(G2G_IP2)
                    .steps("carrier", "ready").timeout(life);
            QemuGuest.Builder b = QemuGuest.builder().name(name + "-2").logDir(LOGS).mac(G2G_MAC2).ip(G2G_IP2 + "/24").peer(G2G_IP1)
                    .steps("carrier", "ready").timeout(life);
            switch (side) {
                case "g2g-ours" -> {
                    a.vhostUser(g2g.sock1());
                    b.vhostUser(g2g.sock2());
                }
                case "g2g-bridge" -> {
                    a.netns(g2g.bridgeNs()).tap(G2G_TAP1);
                    b.netns(g2g.bridgeNs()).tap(G2G_TAP2);
                }
                default -> throw new IllegalArgumentException("unknown side " + side + " (g2g-bridge, g2g-ours)");
            }
            QemuGuest client = a.start();
            try {
                return new G2gPair(side, name, client, b.start(), oneShot);
            } catch (RuntimeException e) {
                client.kill();
                throw e;
            }
        }

        /** Both booted, guest 2's iperf3 server listening. */
        @Override
        public void ready() throws InterruptedException {
            client.awaitLine(QemuGuest.READY, QemuGuest.BOOT_WAIT);
            server.awaitLine(QemuGuest.READY, QemuGuest.BOOT_WAIT);
            server.exec("iperf3 -s " + (oneShot ? "-1 " : "") + "-B " + G2G_IP2 + " > /dev/null 2>&1 &", QemuGuest.STEP_WAIT);
            long deadline = System.nanoTime() + QemuGuest.STEP_WAIT.toNanos();
            while (server.exec("grep -q ':1451 00000000:0000 0A' /proc/net/tcp", QemuGuest.STEP_WAIT).exitCode() != 0) {
                if (System.nanoTime() > deadline) throw new IllegalStateException(name + ": iperf3 in guest 2 is not listening after " + QemuGuest.STEP_WAIT);
                Thread.sleep(200);   // a poll interval
            }
        }

        /** Ping guest 2, then the iperf3 run (the measured window: both QEMUs' CPU summed, and this JVM's). */
        @Override
        public Round round(String tag, int seconds, int pings) throws Exception {
            List<Double> rtt = rtts(client.exec("ping -c " + pings + " -W 2 " + G2G_IP2, Duration.ofSeconds(pings * 3L + 60)).lines());
            List<ProcessHandle> qemus = java.util.stream.Stream.of(qemuProcess(client), qemuProcess(server)).flatMap(Optional::stream).toList();
            long t0 = System.nanoTime(), jvm0 = cpuNanos(ProcessHandle.current()), qemu0 = qemus.stream().mapToLong(GuestBench::cpuNanos).sum();
            QemuGuest.Result run = client.exec("do_iperf3 " + seconds, Duration.ofSeconds(seconds + 120));   // /init's iperf3 step
            long wall = System.nanoTime() - t0, jvm1 = cpuNanos(ProcessHandle.current()), qemu1 = qemus.stream().mapToLong(GuestBench::cpuNanos).sum();
            double[] mbps = iperf3Mbps(run.lines());
            return new Round(mbps[1], mbps[0], retransmits(run.lines()), rtt, qemus.size() == 2 ? 100.0 * (qemu1 - qemu0) / wall : Double.NaN,
                    100.0 * (jvm1 - jvm0) / wall);
        }

        @Override
        public void close() throws InterruptedException {
            stop(client);
            stop(server);
        }
    }

    /** Powers a guest off, and kills its QEMU if it has not exited 20 s later. */
    private static void stop(QemuGuest guest) throws InterruptedException {
        if (guest.powerOff(Duration.ofSeconds(20)).isEmpty()) guest.kill();
    }

    private static void report(Map<String, List<Round>> results, int rounds) {
        StringBuilder head = new StringBuilder(String.format("%n%-16s", "Mbit/s"));
        for (int r = 1; r <= rounds; r++) head.append(String.format("%9s", "round " + r));
        head.append(String.format("%9s %9s %12s %9s %9s", "median", "vs base", "ping med ms", "QEMU cpu", "JVM cpu"));
        System.out.println(head);
        double tapMedian = results.containsKey("qemu-tap") ? okMedian(results.get("qemu-tap")) : Double.NaN;
        double bridgeMedian = results.containsKey("g2g-bridge") ? okMedian(results.get("g2g-bridge")) : Double.NaN;
        for (var e : results.entrySet()) {
            double base = e.getKey().startsWith("g2g-") ? bridgeMedian : tapMedian;   // guest to guest against the bridge
            StringBuilder row = new StringBuilder(String.format("%-16s", e.getKey()));
            for (Round r : e.getValue()) row.append(r.failed() ? String.format("%9s", "failed") : String.format("%9.1f", r.receiverMbps()));
            List<Round> ok = e.getValue().stream().filter(r -> !r.failed()).toList();
            double med = median(ok.stream().map(Round::receiverMbps).toList());
            double rtt = median(e.getValue().stream().flatMap(r -> r.rttMs().stream()).toList());
            double qcpu = median(ok.stream().map(Round::qemuCpuPct).toList());
            double jcpu = median(ok.stream().map(Round::jvmCpuPct).toList());
            row.append(String.format("%9.1f %9.2f %12.3f %8.0f%% %8.0f%%", med, med / base, rtt, qcpu, jcpu));
            System.out.println(row);
        }
        if (results.containsKey("ours") && results.containsKey("qemu-tap")) {
            double ours = okMedian(results.get("ours"));
            System.out.printf("%nratio ours / qemu-tap (iperf3 receiver Mbit/s, medians): %.2f%n", ours / tapMedian);
            if (results.containsKey("qemu-tap-nogso")) {
                double nogso = okMedian(results.get("qemu-tap-nogso"));
                System.out.printf("ratio ours / qemu-tap-nogso (same offloads as ours, no TSO/UFO): %.2f%n", ours / nogso);
            }
        }
        ratio(results, "ours", "qemu-tap");
        perVcpuRatio(results, "ours", "qemu-tap");
        ratio(results, "g2g-ours", "g2g-bridge");
        System.out.println("(failed = iperf3 reported no receiver figure; left out of the medians. CPU = % of one core during iperf3,");
        System.out.println(" vs base = against qemu-tap, or g2g-bridge for the g2g rows, whose QEMU cpu sums both guests.");
        System.out.println(" QEMU all threads, JVM = our back-end. 1 vCPU under TCG: the guest's TCP stack dominates; see benchmarks/README.md)");
    }

    /** The median of per-round ratios {@code ours / base} with its spread, and each round's ratio (failed rounds left out). */
    private static void ratio(Map<String, List<Round>> results, String ours, String base) {
        if (!results.containsKey(ours) || !results.containsKey(base)) return;
        double[] o = results.get(ours).stream().mapToDouble(r -> r.failed() ? Double.NaN : r.receiverMbps()).toArray();
        double[] b = results.get(base).stream().mapToDouble(r -> r.failed() ? Double.NaN : r.receiverMbps()).toArray();
        StringBuilder per = new StringBuilder();
        for (int i = 0; i < Math.min(o.length, b.length); i++) per.append(String.format(java.util.Locale.ROOT, " %.2f", o[i] / b[i]));
        Stats.Ratio x = Stats.Ratio.of(o, b);
        System.out.printf("per-round ratio %s / %s:%s -> %s%n", ours, base, per, x == null ? "no round with both" : x);
    }

    /**
     * The same per-round ratio of Mbit/s per core the vCPU thread got: under TCG the guest is CPU-bound, so its
     * throughput follows the host CPU its vCPU thread gets, which on these shared machines swings with the load
     * and with what else runs beside it (for qemu-tap, QEMU's own main loop writing the TAP under the BQL; for ours,
     * our threads). Per vCPU core, what is left is the guest's cost per byte through each back-end.
     */
    private static void perVcpuRatio(Map<String, List<Round>> results, String ours, String base) {
        if (!results.containsKey(ours) || !results.containsKey(base)) return;
        java.util.function.ToDoubleFunction<Round> perCore = r -> r.failed() || !(r.guest().vcpuPct() > 0) ? Double.NaN
                : r.receiverMbps() / (r.guest().vcpuPct() / 100);
        double[] o = results.get(ours).stream().mapToDouble(perCore).toArray();
        double[] b = results.get(base).stream().mapToDouble(perCore).toArray();
        StringBuilder per = new StringBuilder();
        for (int i = 0; i < Math.min(o.length, b.length); i++) per.append(String.format(java.util.Locale.ROOT, " %.2f", o[i] / b[i]));
        Stats.Ratio x = Stats.Ratio.of(o, b);
        System.out.printf("per-round ratio %s / %s of Mbit/s per vCPU core:%s -> %s%n", ours, base, per, x == null ? "no round with both" : x);
    }

    /** QEMU under its {@code timeout} wrapper (and {@code ip netns exec}, which execs it in place). */
    private static Optional<ProcessHandle> qemuProcess(QemuGuest guest) {
        return ProcessHandle.of(guest.console().pid()).stream().flatMap(p -> java.util.stream.Stream.concat(java.util.stream.Stream.of(p), p.descendants()))
                .filter(p -> p.info().command().map(c -> c.contains("qemu-system")).orElse(false)).findFirst();
    }

    /**
     * CPU time (utime + stime, in clock ticks of 10 ms) of QEMU's busiest thread, which under TCG with one vCPU is the
     * vCPU thread (QEMU names its threads only with {@code debug-threads=on}): the guest gets exactly this much host
     * CPU, so its share says whether the guest was starved by the other threads on the host. Ticks per
     * thread id, compared between two reads with {@link #vcpuDelta}.
     */
    static Map<Long, Long> threadTicks(ProcessHandle qemu) {
        Map<Long, Long> out = new java.util.HashMap<>();
        try (var tasks = Files.list(Path.of("/proc", String.valueOf(qemu.pid()), "task"))) {
            for (Path t : tasks.toList()) {
                try {
                    String stat = Files.readString(t.resolve("stat"));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    out.put(Long.parseLong(t.getFileName().toString()), Long.parseLong(f[11]) + Long.parseLong(f[12]));   // utime + stime
                } catch (java.io.IOException | RuntimeException e) {
                    // the thread ended between the listing and the read
                }
            }
        } catch (java.io.IOException e) {
            // QEMU is gone
        }
        return out;
    }

    /** The largest per-thread growth between two {@link #threadTicks} reads: the vCPU thread's ticks over the window. */
    static long vcpuDelta(Map<Long, Long> before, Map<Long, Long> after) {
        long best = 0;
        for (var e : after.entrySet()) best = Math.max(best, e.getValue() - before.getOrDefault(e.getKey(), 0L));
        return best;
    }

    /** {busy, nice, total} jiffies of all CPUs from /proc/stat (nice: other helpers' niced builds and tests). */
    static long[] machineTicks() {
        try {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            long total = 0;
            for (int i = 1; i < f.length && i <= 8; i++) total += Long.parseLong(f[i]);
            long idle = Long.parseLong(f[4]) + Long.parseLong(f[5]);
            return new long[] {total - idle, Long.parseLong(f[2]), total};
        } catch (java.io.IOException e) {
            return new long[3];
        }
    }

    /**
     * Watches where QEMU's threads and our data-path threads (device workers, the TAP reader, the vhost-user
     * session) run against the vCPU thread ("CPU 0/TCG" with debug-threads=on; else QEMU's busiest thread so far).
     */
    private static ThreadCpu.Placement placement(ProcessHandle qemu) {
        Map<Long, ThreadCpu.Sample> q = ThreadCpu.read(qemu.pid());
        long vcpu = q.entrySet().stream().filter(e -> e.getValue().name().startsWith("CPU ")).map(Map.Entry::getKey).findFirst()
                .orElseGet(() -> q.entrySet().stream().max((a, b) -> Long.compare(a.getValue().runNanos(), b.getValue().runNanos()))
                        .map(Map.Entry::getKey).orElse(-1L));
        Map<Long, Long> watch = new LinkedHashMap<>();
        q.keySet().forEach(t -> { if (t != vcpu) watch.put(t, qemu.pid()); });
        long self = ProcessHandle.current().pid();
        ThreadCpu.read(self).forEach((t, s) -> {
            String n = s.name();
            // device threads are "<container>/<device>..." (cut to 15 characters), the TAP's "jvbus-tap:...", sessions "vhost-user ..."
            if (n.contains("/") || n.startsWith("jvbus") || n.startsWith("vhost") || n.contains("poll")) watch.put(t, self);
        });
        return new ThreadCpu.Placement(qemu.pid(), vcpu, watch, 10);
    }

    private static long cpuNanos(ProcessHandle p) {
        return p.info().totalCpuDuration().map(Duration::toNanos).orElse(0L);
    }

    static double okMedian(List<Round> rounds) {
        return median(rounds.stream().filter(r -> !r.failed()).map(Round::receiverMbps).toList());
    }

    static double median(List<Double> xs) {
        if (xs.isEmpty()) return Double.NaN;
        List<Double> s = xs.stream().sorted().toList();
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }
}
