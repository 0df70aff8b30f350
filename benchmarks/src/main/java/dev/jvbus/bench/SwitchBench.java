package dev.jvbus.bench;

import dev.jvbus.bench.BenchOptions.Kind;
import dev.jvbus.bench.VhostUserBench.Pmd;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Packets/s switched between two vhost-user ports (issue 18, {@code bench-switch}): our bus (two virtio-net
 * devices on one switch network, each served by {@link VhostUserBackend}) against what users pick for that
 * job, OVS-DPDK (a private {@link OvsDpdk}: a {@code netdev} bridge with the NORMAL action and two
 * {@code dpdkvhostuser} ports).
 *
 * <p><b>Front-end:</b> one {@code dpdk-testpmd} with two {@code net_virtio_user} ports, one per switch port,
 * forwarding on lcore 0 (cpu 0) in {@code mac} mode. {@code start tx_first N} puts N bursts of 32 frames of
 * the size asked on each port, addressed to the other port's MAC; testpmd forwards what port 0 receives out
 * of port 1 and back, so each frame crosses the switch again and again, both ways, with 2 x N x 32 frames in
 * flight. Rate = frames the two ports received per second (testpmd's own counters, the same for both
 * switches): each is one switching. Why not a txonly testpmd and an rxonly one: the front-ends have one core
 * between them, and two busy-polling processes on one core get it in scheduler slices of milliseconds;
 * while the receiver is off the core its ring is full and the switch drops everything for the whole slice
 * (measured: 0.3 M of 7 M frames sent arrived), so that pair measures the scheduler. In this loop nothing
 * is dropped (the frames in flight fit in the rings), one process polls everything, and the switch always
 * has frames to move both ways. A frame lost (a burst sent before a port was ready) shows as fewer in flight
 * and is reported; a direction that carries nothing voids the round.
 *
 * <p><b>The switch alone on one core:</b> the switch runs on cpu 1. For ours that is this JVM, which
 * {@code ./jvbus bench-switch} starts under {@code taskset -c 1}; OVS-DPDK's daemons inherit that affinity
 * and get {@code dpdk-lcore-mask}/{@code pmd-cpu-mask} = cpu 1. testpmd pins its forwarding lcore to cpu 0
 * itself (its idle main lcore sits on cpu 1, blocked on its console). OVS runs only during its own rounds
 * (started and stopped each time), since its poll-mode thread spins whether or not there is traffic.
 *
 * <p>Rounds alternate the contenders (OVS then ours, then ours then OVS); the result is the median of the
 * per-round ratios with its spread ({@link Stats.Ratio}). Without OVS-DPDK installed the bench says so and
 * measures ours alone (no ratio).
 *
 * <p><b>ours and own:</b> "ours" is the bus as configured by default (its tx queues served by the container's
 * poll groups: one thread per core, which pinned to one core is one thread for both ports); "own" (in
 * {@code --sides ovs,ours,own}) is a second pair of devices, in a container of their own, with {@code poll=own}:
 * a thread per tx queue, as before poll groups. Interleaved in the same rounds, so a change's before and after
 * are measured against the same OVS under the same load.
 *
 * <p>Each turn starts settled, once the memory the last turn's processes freed has gone back to the host
 * ({@link FreePageReporting}, {@code --settle S} as in bench-vhost); a window that still saw free page reports says so.
 *
 * <p>Run: {@code ./jvbus bench-switch [--rounds N] [--seconds S] [--warmup S] [--settle S] [--sizes 64,1500] [--bursts N] [--sides ovs,ours,own]}
 */
public final class SwitchBench {
    private static final Pattern FWD_STARTED = Pattern.compile("packet forwarding.* - ports=");
    private static final long MAC_A = MacAddress.parse("02:00:00:00:5b:0a");
    private static final long MAC_B = MacAddress.parse("02:00:00:00:5b:0b");
    private static final int BURST = 32;        // testpmd's default burst, what tx_first sends per burst
    private static final int SWITCH_CPU = 1;    // the jvbus script pins this JVM there; testpmd forwards on cpu 0

    private SwitchBench() {}

    public static void main(String[] args) throws Exception {
        BenchOptions opts = BenchOptions.parseOrExit("usage: SwitchBench [--rounds N] [--seconds S] [--warmup S] [--settle S] [--sizes 64,1500]"
                        + " [--bursts N (per direction, of 32 frames)] [--ovs-mem MB] [--sides ovs,ours,own]",
                Map.of("--rounds", Kind.INT, "--seconds", Kind.NUMBER, "--warmup", Kind.NUMBER, "--settle", Kind.NUMBER, "--sizes", Kind.INTS,
                        "--bursts", Kind.INT, "--ovs-mem", Kind.INT, "--sides", Kind.WORDS), args);
        int rounds = opts.intValue("--rounds", 5), bursts = opts.intValue("--bursts", 4), ovsMem = opts.intValue("--ovs-mem", 1024);
        double seconds = opts.number("--seconds", 2), warmup = opts.number("--warmup", 1.5);
        FreePageReporting reporting = FreePageReporting.find(opts);
        int[] sizes = opts.ints("--sizes", new int[] {64, 1500});
        List<String> sides = opts.words("--sides", List.of("ovs", "ours"));
        if (!Files.isExecutable(Path.of("/usr/bin/dpdk-testpmd"))) {
            System.out.println("dpdk-testpmd missing (Debian package dpdk-dev; .ci/install-deps installs it): nothing to measure");
            System.exit(2);
        }
        boolean ovsSide = sides.contains("ovs"), oursSide = sides.contains("ours"), ownSide = sides.contains("own");
        String missing = OvsDpdk.missing();
        if (ovsSide && missing != null) {
            System.out.println("OVS-DPDK missing: " + missing + ". SKIPPED: the OVS-DPDK side and every ratio; ours is measured alone.");
            ovsSide = false;
        }
        Path dir = Files.createTempDirectory("jvbus-switch-bench");
        Path logs = Path.of("target", "bench-switch");
        Files.createDirectories(logs);

        Container c = Bus.withDiscoveredModels().createContainer("bench-switch");
        Device a = c.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_A)));
        Device b = c.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_B)));
        L2Switch sw = Networks.of(c).require("switch");
        Path sockA = dir.resolve("a.sock"), sockB = dir.resolve("b.sock");
        VhostUserBackend servA = VhostUserBackend.serve(a, sockA), servB = VhostUserBackend.serve(b, sockB);
        // "own": the same, each tx queue on a thread of its own (poll=own), in a container (and poll groups) of its own.
        Container c2 = Bus.withDiscoveredModels().createContainer("bench-switch-own");
        Device a2 = c2.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_A), "poll", "own"));
        Device b2 = c2.addDevice("virtio-net", -1L, Map.of("network", "switch", "mac", MacAddress.toString(MAC_B), "poll", "own"));
        L2Switch sw2 = Networks.of(c2).require("switch");
        Path sockA2 = dir.resolve("a2.sock"), sockB2 = dir.resolve("b2.sock");
        VhostUserBackend servA2 = VhostUserBackend.serve(a2, sockA2), servB2 = VhostUserBackend.serve(b2, sockB2);

        System.out.printf(Locale.ROOT, "switching between two vhost-user ports; testpmd virtio_user x2, mac forwarding, %d x %d frames in flight"
                        + " each way; %d rounds x %.1f s (after %.1f s warm-up) per case; switch on cpu %d (this JVM: cpus %s); load %s; %s%n",
                bursts, BURST, rounds, seconds, warmup, SWITCH_CPU, allowedCpus(), VhostUserBench.loadAverage(), reporting.describe());
        Map<Integer, double[][]> results = new LinkedHashMap<>();   // size -> [ovs|ours|own][round], Mpps, NaN = not measured
        for (int size : sizes) {
            double[][] r = new double[3][rounds];
            for (double[] side : r) Arrays.fill(side, Double.NaN);
            results.put(size, r);
        }
        int seq = 0;
        java.util.Set<String> negotiatedShown = new java.util.HashSet<>();
        try {
            for (int r = 0; r < rounds; r++) {
                for (int size : sizes) {
                    double[][] res = results.get(size);
                    boolean ovsFirst = r % 2 == 0;
                    StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  round %d, %4d B:", r + 1, size));
                    // OVS first in odd rounds, last in even ones; ours and own swap places every round.
                    String[] order = r % 2 == 0 ? new String[] {"ovs", "ours", "own"} : new String[] {"own", "ours", "ovs"};
                    if (r % 4 >= 2) order = r % 2 == 0 ? new String[] {"ovs", "own", "ours"} : new String[] {"ours", "own", "ovs"};
                    for (String turn : order) {
                        seq++;
                        // Settled: the memory the last turn's processes freed (a testpmd's, OVS's) has gone back to the
                        // host before this one starts (FreePageReporting says why).
                        reporting.settle();
                        if (turn.equals("ovs") && ovsSide) {
                            try (OvsDpdk ovs = OvsDpdk.start(logs, "ovs-" + seq, SWITCH_CPU, ovsMem, List.of("vhu0", "vhu1"))) {
                                Loop l = loop("ovs-client-" + seq, logs, ovs.socket("vhu0"), ovs.socket("vhu1"), () -> ovs.added("vhu0") && ovs.added("vhu1"),
                                        size, bursts, warmup, seconds, reporting);
                                res[0][r] = l.mpps();
                                line.append(String.format(Locale.ROOT, "  ovs %6.3f Mpps%s", l.mpps(), l.note(bursts)));
                                Files.writeString(logs.resolve("ovs-" + seq).resolve("stats.txt"), ovs.pmdStats() + "\nvhu0 " + ovs.statistics("vhu0")
                                        + "\nvhu1 " + ovs.statistics("vhu1") + "\n");
                            }
                        } else if (turn.equals("ours") && oursSide || turn.equals("own") && ownSide) {
                            boolean own = turn.equals("own");
                            Device da = own ? a2 : a, db = own ? b2 : b;
                            L2Switch s2 = own ? sw2 : sw;
                            long d0 = drops(s2);
                            long k0 = txKicks(da) + txKicks(db), w0 = txLate(da) + txLate(db), f0 = txFrames(da) + txFrames(db);
                            String[] negotiated = {null};
                            Loop l = loop(turn + "-client-" + seq, logs, own ? sockA2 : sockA, own ? sockB2 : sockB,
                                    () -> {
                                        boolean up = da.isQueueRunning(0) && da.isQueueRunning(1) && db.isQueueRunning(0) && db.isQueueRunning(1);
                                        if (up) negotiated[0] = String.join(",", da.features().negotiatedNames(da.featureCatalog()));
                                        return up;
                                    },
                                    size, bursts, warmup, seconds, reporting);
                            // What the front-end took decides its own paths (DPDK's virtio PMD picks its rx/tx functions by
                            // IN_ORDER, MRG_RXBUF and the offloads), so say it once per side: OVS's is in its vswitchd log.
                            if (!negotiatedShown.contains(turn)) {
                                negotiatedShown.add(turn);
                                System.out.println("  (" + turn + ": testpmd negotiated " + negotiated[0] + ")");
                            }
                            VhostUserBench.awaitFree(da);
                            VhostUserBench.awaitFree(db);
                            res[own ? 2 : 1][r] = l.mpps();
                            long dropped = drops(s2) - d0;
                            long frames = txFrames(da) + txFrames(db) - f0;
                            // Kicks per 1000 frames: how often the front-end had to ring (a syscall on its core) because the
                            // switch's thread had gone to sleep; OVS's PMD never sleeps, so its front-end never rings.
                            line.append(String.format(Locale.ROOT, "  %s %6.3f Mpps [%.1f kicks/kframe%s]%s%s", turn, l.mpps(),
                                    frames == 0 ? 0.0 : 1000.0 * (txKicks(da) + txKicks(db) - k0) / frames,
                                    txLate(da) + txLate(db) == w0 ? "" : ", " + (txLate(da) + txLate(db) - w0) + " late",
                                    l.note(bursts), dropped == 0 ? "" : " (switch dropped " + dropped + ")"));
                        }
                        reporting.exited();
                    }
                    if (!Double.isNaN(res[0][r]) && !Double.isNaN(res[1][r]))
                        line.append(String.format(Locale.ROOT, "   ours/ovs %.2f", res[1][r] / res[0][r]));
                    if (!Double.isNaN(res[0][r]) && !Double.isNaN(res[2][r]))
                        line.append(String.format(Locale.ROOT, "   own/ovs %.2f", res[2][r] / res[0][r]));
                    System.out.println(line);
                }
            }
        } finally {
            servA.close();
            servB.close();
            servA2.close();
            servB2.close();
            try (var files = Files.walk(dir)) {   // the two sockets and their directory
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
        System.out.println();
        System.out.println("| frame | OVS-DPDK (Mpps, median) | jvbus (Mpps, median) | ours/OVS: median of round ratios [spread] |");
        System.out.println("|------:|------------------------:|---------------------:|:-------------------------------------------|");
        for (var e : results.entrySet()) {
            double[] ov = e.getValue()[0], us = e.getValue()[1];
            Stats.Ratio ratio = Stats.Ratio.of(us, ov);
            System.out.printf(Locale.ROOT, "| %4d B | %23s | %20s | %s |%n", e.getKey(), fmt(median(ov)), fmt(median(us)),
                    ratio == null ? (ovsSide ? "no round measured both" : missing != null ? "SKIPPED (no OVS-DPDK)" : "not measured (--sides)") : ratio.toString().strip());
        }
        if (ownSide) {
            System.out.println();
            System.out.println("| frame | own: poll=own (Mpps, median) | own/OVS: median of round ratios | ours/own: median of round ratios |");
            System.out.println("|------:|-----------------------------:|:--------------------------------|:---------------------------------|");
            for (var e : results.entrySet()) {
                double[] ov = e.getValue()[0], us = e.getValue()[1], own = e.getValue()[2];
                Stats.Ratio ownOvs = Stats.Ratio.of(own, ov), oursOwn = Stats.Ratio.of(us, own);
                System.out.printf(Locale.ROOT, "| %4d B | %28s | %s | %s |%n", e.getKey(), fmt(median(own)),
                        ownOvs == null ? "-" : ownOvs.toString().strip(), oursOwn == null ? "-" : oursOwn.toString().strip());
            }
        }
        System.out.println("(load average after: " + VhostUserBench.loadAverage() + "; testpmd and OVS logs in " + logs.toAbsolutePath() + ")");
        System.exit(0);
    }

    /**
     * One round's figure: Mpps over the window, how many frames were still circulating at its end, and the free page
     * reports the kernel made within the window (none where the turn was settled: {@link FreePageReporting}).
     */
    private record Loop(double mpps, long inFlight, long reports) {
        String note(int bursts) {
            long expected = 2L * bursts * BURST;
            String reported = reports == 0 ? "" : " (" + reports + " free page reports in the window)";
            return (Double.isNaN(mpps) ? " (VOID: a direction carried nothing)"
                    : inFlight < expected ? " (" + inFlight + " of " + expected + " in flight)" : "") + reported;
        }
    }

    /**
     * Starts the front-end on the two sockets, puts {@code bursts} bursts in flight each way once both ports
     * are up, and measures the frames both ports received per second after the warm-up.
     */
    private static Loop loop(String name, Path logs, Path sockA, Path sockB, Ready ready, int size, int bursts, double warmup,
                             double seconds, FreePageReporting reporting) throws Exception {
        try (Pmd pmd = Pmd.start(name, logs, List.of("-l", "0-1", "--main-lcore", "1"),
                List.of("net_virtio_user0,path=" + sockA + ",mac=" + MacAddress.toString(MAC_A),
                        "net_virtio_user1,path=" + sockB + ",mac=" + MacAddress.toString(MAC_B)),
                List.of("--forward-mode=mac", "--txpkts=" + size, "--eth-peer=0," + MacAddress.toString(MAC_B),
                        "--eth-peer=1," + MacAddress.toString(MAC_A), "-i"))) {
            pmd.awaitReady();
            // A burst sent before the back-end has its rings running is lost for good (the loop has no source):
            // wait until the switch says both ports are up, then give both switches the same second to settle.
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (!ready.ready()) {
                if (System.nanoTime() > deadline) throw new IllegalStateException(name + ": the switch's ports were not up within 60 s");
                Thread.sleep(20);
            }
            Thread.sleep(1000);
            int m = pmd.mark();
            pmd.command("start tx_first " + bursts);
            pmd.await(m, FWD_STARTED, 10);
            Thread.sleep((long) (warmup * 1000));
            long p0 = reporting.reports();
            long[][] s0 = pmd.portStats(2);
            long t0 = System.nanoTime();
            Thread.sleep((long) (seconds * 1000));
            long[][] s1 = pmd.portStats(2);
            long t1 = System.nanoTime();
            long reports = reporting.reports() - p0;
            if (!pmd.alive()) throw new IllegalStateException(name + " died; see its log");
            pmd.command("stop");
            long rx0 = s1[0][0] - s0[0][0], rx1 = s1[1][0] - s0[1][0];
            long inFlight = (s1[0][1] + s1[1][1]) - (s1[0][0] + s1[1][0]);
            double mpps = rx0 == 0 || rx1 == 0 ? Double.NaN : (rx0 + rx1) / ((t1 - t0) / 1e9) / 1e6;
            return new Loop(mpps, inFlight, reports);
        }
    }

    private interface Ready { boolean ready() throws Exception; }

    /** The device's tx queues' kicks (the front-end's doorbell rings the switch's thread took). */
    private static long txKicks(Device d) {
        long n = 0;
        for (var q : d.queueStats()) if (q.name().startsWith("tx")) n += q.kicks();
        return n;
    }

    /** The device's tx queues' late wake-ups (found with work their doorbell had not rung for). */
    private static long txLate(Device d) {
        long n = 0;
        for (var q : d.queueStats()) if (q.name().startsWith("tx")) n += q.lateWakeups();
        return n;
    }

    /** Buffers the device's tx queues completed. */
    private static long txFrames(Device d) {
        long n = 0;
        for (var q : d.queueStats()) if (q.name().startsWith("tx")) n += q.buffers();
        return n;
    }

    private static long drops(L2Switch sw) {
        long n = 0;
        for (PortStats p : sw.stats()) n += p.dropped();
        return n;
    }

    private static double median(double[] v) {
        double[] m = Arrays.stream(v).filter(x -> !Double.isNaN(x)).toArray();
        return m.length == 0 ? Double.NaN : Stats.median(m);
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }

    private static String allowedCpus() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/self/status")))
                if (l.startsWith("Cpus_allowed_list:")) return l.substring(l.indexOf(':') + 1).trim();
        } catch (java.io.IOException ignored) {
            // not Linux
        }
        return "?";
    }
}
