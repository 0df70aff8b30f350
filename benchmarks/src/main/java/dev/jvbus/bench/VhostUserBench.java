package dev.jvbus.bench;

import dev.jvbus.bench.BenchOptions.Kind;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.memory.HostMemory;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameOffload;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Packets/s through a vhost-user back-end, ours against DPDK's own, in one run (issue 6, "Benchmark
 * (not a test)"). The front-end is the same in both: {@code dpdk-testpmd} with a {@code net_virtio_user}
 * port in txonly mode, forwarding on lcore 0, sending frames of the given size as fast as the back-end
 * takes them.
 *
 * <ul>
 *   <li>dpdk: a second testpmd with {@code net_vhost} (DPDK's vhost library) in rxonly, forwarding on
 *       lcore 1.</li>
 *   <li>ours: this JVM's bus, a virtio-net device on an L2 switch with one more port, assigned the MAC testpmd
 *       sends to ({@link #joinPeer}), that counts what the switch hands it, served by {@code VhostUserBackend} (so
 *       each frame goes tx ring, header check, switch lookup, delivery).</li>
 * </ul>
 * The rate is measured with the same instrument on both sides: the front-end's own TX-packets (what its port got
 * into the back-end's ring) over the window, read from its console ({@code show port stats all}, answered on its
 * main lcore, CPU 1, where either back-end works), each reading timed at the midpoint between asking and the
 * answer. Until session 22 DPDK's side was read from its back-end's console and ours from an in-process counter:
 * the console's answers took 2-10 ms, so the two sides were timed differently (up to 0.5 % in DPDK's favour). Ours
 * still prints its in-process count over the window as a check: every frame the front-end's port counts reaches the
 * port on our switch (a ring holds at most 256 between the two).
 * Per round, ours also prints its worker's busy time per frame over the window and the share of the window that is
 * (the poll group's wall time minus its waits, {@link DoorbellWait#waitedNanos}): well below 100 %, it waited for the
 * front-end; near 100 %, it had little slack, which does not by itself mean it set the pace (benchmarks/README,
 * session 21: at 93-95 % busy the ring never filled in the window, and making our worker slower on purpose left the
 * rate as it was). The front-end's refused share covers the client's whole life, warm-up included (each new session
 * recompiles our worker's hot path for its first fraction of a second), so it is the weaker sign. Both sides print the
 * share of the window the front-end's forwarding thread was on its CPU ({@link Pmd#forwardingRunNanos}): a round in
 * which something else on the machine took the front-end's core is slow for that reason alone.
 * Rounds alternate dpdk/ours per size, in ABBA order (DPDK first in odd rounds, ours first in even ones), so a change in
 * the machine's load hits both and a drift within a round favours neither; the table shows
 * each side's median over the rounds and the ratio of the medians. {@code --sides ours} measures ours alone: to
 * compare builds of the bus run by run, one JVM per run ({@code benchmarks/switch-builds.sh} with
 * {@code BENCH=vhost}).
 *
 * <p>{@code --sides dpdk,dpdk} is the calibration: DPDK's back-end on both sides, so every ratio is 1 but for the machine's
 * noise (session 23: runs 0.99-1.02, rounds 0.96-1.04 in a steady state and 0.84-1.46 where the machine changed state
 * between the two sides; benchmarks/README).
 *
 * <p>Each turn starts settled: after the last turn's processes exited, the bench waits for the kernel to hand their
 * memory back to the host ({@link FreePageReporting}; {@code --settle S}, default 2.5, is the least it waits after an
 * exit, 0 waits not at all). Each round prints the free page reports that still came within each side's window.
 *
 * <p>Before the first round, one untimed session of ours per size ({@code --jit-warmup S}, default 4, 0 for none) lets
 * this JVM compile our data path; the per-turn {@code --warmup} is for the session, the ring and the caches.
 *
 * <p>Run: {@code ./jvbus bench-vhost [--rounds N] [--seconds S] [--warmup S] [--jit-warmup S] [--settle S] [--sizes 64,1500]
 * [--sides dpdk,ours|dpdk,dpdk] [--param k=v,...]}; {@code --param} gives our device further model parameters
 * ({@code busy-poll=on}: a tx thread that never sleeps, as DPDK's forwarding core).
 */
public final class VhostUserBench {
    private static final Pattern RX_PACKETS = Pattern.compile("RX-packets:\\s*(\\d+)");
    private static final Pattern TX_PACKETS = Pattern.compile("TX-packets:\\s*(\\d+)");
    private static final Pattern TX_TOTALS = Pattern.compile("TX-packets:\\s*\\d+\\s+TX-dropped:\\s*(\\d+)\\s+TX-total:\\s*(\\d+)");
    private static final Pattern PORT_SUMMARY = Pattern.compile("Number of available ports: (\\d+)");
    private static final Pattern FWD_STARTED = Pattern.compile("packet forwarding.* - ports=");
    private static final long DEV_MAC = MacAddress.parse("02:00:00:00:be:01");
    private static final long PEER_MAC = MacAddress.parse("02:00:00:00:be:02");

    private VhostUserBench() {}

    public static void main(String[] args) throws Exception {
        BenchOptions opts = BenchOptions.parseOrExit("usage: VhostUserBench [--rounds N] [--seconds S] [--warmup S] [--jit-warmup S] [--settle S] [--sizes 64,1500]"
                        + " [--sides dpdk,ours|dpdk,dpdk] [--param k=v,...]",
                Map.of("--rounds", Kind.INT, "--seconds", Kind.NUMBER, "--warmup", Kind.NUMBER, "--jit-warmup", Kind.NUMBER, "--settle", Kind.NUMBER,
                        "--sizes", Kind.INTS, "--sides", Kind.WORDS, "--param", Kind.WORDS), args);
        int rounds = opts.intValue("--rounds", 5);
        double seconds = opts.number("--seconds", 1.5), warmup = opts.number("--warmup", 1), jitWarmup = opts.number("--jit-warmup", 4);
        FreePageReporting reporting = FreePageReporting.find(opts);
        int[] sizes = opts.ints("--sizes", new int[] {64, 1500});
        List<String> sides = opts.words("--sides", List.of("dpdk", "ours"));
        // dpdk,dpdk: the calibration, DPDK's back-end against itself. Its ratios show what this machine's noise alone
        // does to a ratio that is 1 by construction (benchmarks/README, session 23).
        boolean calibration = sides.equals(List.of("dpdk", "dpdk"));
        boolean dpdkSide = sides.contains("dpdk"), oursSide = sides.contains("ours") || calibration;
        if (!List.of(List.of("dpdk", "ours"), List.of("ours", "dpdk"), List.of("dpdk"), List.of("ours"), List.of("dpdk", "dpdk")).contains(sides)) {
            System.out.println("--sides: dpdk, ours, both, or dpdk,dpdk (DPDK against itself), not " + sides);
            System.exit(2);
        }
        Path testpmd = Path.of("/usr/bin/dpdk-testpmd");
        if (!Files.isExecutable(testpmd)) {
            System.out.println("dpdk-testpmd missing (Debian package dpdk-dev; .ci/install-deps installs it)");
            System.exit(2);
        }
        Path dir = Files.createTempDirectory("jvbus-vhost-bench");
        Path logs = Path.of("target", "bench-vhost");
        Files.createDirectories(logs);

        Container c = Bus.withDiscoveredModels().createContainer("bench-vhost");
        Map<String, String> params = new LinkedHashMap<>(Map.of("network", "bench", "mac", MacAddress.toString(DEV_MAC)));
        for (String kv : opts.words("--param", List.of())) {
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                System.out.println("--param takes key=value pairs, not '" + kv + "'");
                System.exit(2);
            }
            params.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Device dev = c.addDevice("virtio-net", -1L, params);
        CountingPort peer = new CountingPort();
        SwitchPort peerPort = joinPeer(Networks.of(c).getOrCreate("bench"), peer, PEER_MAC);
        PollGroups pollGroups = c.resource(PollGroups.RESOURCE);   // our tx worker's: its waits tell its busy time
        Path ourSock = dir.resolve("ours.sock");
        VhostUserBackend ours = VhostUserBackend.serve(dev, ourSock);

        boolean oursJit = oursSide && !calibration && jitWarmup > 0;
        System.out.printf("vhost-user back-ends, testpmd virtio_user txonly -> back-end; %d rounds x %.1f s (after %.1f s warm-up) per case%s;"
                + " cpus %d, load %s; our device's parameters %s; %s%n", rounds, seconds, warmup,
                oursJit ? String.format(", after one untimed session of ours of %.1f s per size (--jit-warmup)", jitWarmup) : "",
                Runtime.getRuntime().availableProcessors(), loadAverage(), params, reporting.describe());
        Map<Integer, long[][]> results = new LinkedHashMap<>();   // size -> [dpdk|ours][round]
        for (int size : sizes) results.put(size, new long[2][rounds]);
        int seq = 0;
        try {
            // This JVM compiles our data path during its first client sessions, on the one CPU it is pinned to, beside
            // our worker: in session 29 C2 still compiled 4-23 methods per half second in the first counted window
            // after a 1 s warm-up, and that round read low (benchmarks/README). A bus runs for months; its first
            // seconds are not its packet rate. DPDK's back-end is compiled ahead of time and starts anew each turn.
            if (oursJit) {
                for (int size : sizes) {
                    reporting.settle();
                    long f0 = peer.frames;
                    jitWarmup("ours-jit-warmup-" + (++seq), logs, ourSock, size, jitWarmup);
                    reporting.exited();
                    System.out.printf("  JIT warm-up, %4d B: ours took %,d frames in %.1f s, not counted%n", size, peer.frames - f0, jitWarmup);
                }
            }
            for (int r = 0; r < rounds; r++) {
                // ABBA: DPDK first in odd rounds, ours first in even ones, so that a drift of the machine's state within
                // a round (or anything the first side leaves behind for the second) favours neither side.
                boolean dpdkFirst = r % 2 == 0;
                for (int size : sizes) {
                    long[][] res = results.get(size);
                    Run d = null, o = null;
                    OursExtras extras = null;
                    for (int turn = 0; turn < 2; turn++) {
                        // Each turn starts once the memory the last one's processes freed has gone back to the host
                        // (FreePageReporting says why: it slowed whichever turn came right after an exit).
                        reporting.settle();
                        if ((turn == 0) == dpdkFirst) {
                            if (dpdkSide) d = dpdkRun(logs, dir, ++seq, size, warmup, seconds, reporting);
                        } else if (calibration) {
                            o = dpdkRun(logs, dir, ++seq, size, warmup, seconds, reporting);
                        } else if (oursSide) {
                            OursExtras.Start s0 = OursExtras.start(dev, peer);
                            o = measureClient("ours-client-" + (++seq), logs, ourSock, size, () -> peer.frames, pollGroups, warmup, seconds, reporting);
                            extras = s0.end(dev, peer, size);
                        }
                        reporting.exited();
                    }
                    if (d != null) res[0][r] = d.pps();
                    if (o == null) {
                        System.out.printf("  round %d, %4d B: dpdk %,12d pkt/s   front-end refused %s, on its CPU %s; free page reports in the window %d%n",
                                r + 1, size, d.pps(), percent(d.refused()), percent(d.frontEndOnCpu()), d.reports());
                        continue;
                    }
                    res[1][r] = o.pps();
                    if (calibration) {
                        System.out.printf("  round %d, %4d B: %s first %,12d pkt/s   second %,12d pkt/s   (%.2f)   front-end refused %s, on its CPU %s;"
                                        + " free page reports in the windows %s%n",
                                r + 1, size, dpdkFirst ? "[first ran first] " : "[second ran first]", d.pps(), o.pps(), (double) o.pps() / Math.max(1, d.pps()),
                                sharesBySide("first", d, "second", o, Run::refused), sharesBySide("first", d, "second", o, Run::frontEndOnCpu),
                                reportsBySide("first", d, "second", o));
                        continue;
                    }
                    String order = dpdkSide ? (dpdkFirst ? "[dpdk first] " : "[ours first] ") : "";
                    String dpdk = d != null ? String.format("dpdk %,12d pkt/s   ", d.pps()) : "";
                    String ratio = d != null ? String.format("   (%.2f)", (double) o.pps() / Math.max(1, d.pps())) : "";
                    String refused = sharesBySide("dpdk", d, "ours", o, Run::refused);
                    String onCpu = sharesBySide("dpdk", d, "ours", o, Run::frontEndOnCpu);
                    // Our worker's busy time per frame, and the share of the window that is (the class comment says what it shows).
                    double busy = o.busyNanosPerPacket(), busyShare = busy * o.pps() / 1e9;
                    String worker = Double.isNaN(busy) ? "?" : String.format("%.1f ns per frame, busy %.0f %%", busy, busyShare * 100);
                    System.out.printf("  round %d, %4d B: %s%sours %,12d pkt/s%s   ours: counted in-process %,d pkt/s, %.2f kicks, %.2f irqs"
                                    + " per 1000 buffers, %.1f buffers per publication, %.0f lines evicted per 1000 buffers,"
                                    + " worker %s; front-end refused %s, on its CPU %s; free page reports in the windows %s%n",
                            r + 1, size, order, dpdk, o.pps(), ratio, o.checkPps(), extras.kicksPerThousand(), extras.irqsPerThousand(),
                            extras.buffersPerPublication(), extras.evictedPerThousand(), worker, refused, onCpu, reportsBySide("dpdk", d, "ours", o));
                }
            }
        } finally {
            ours.close();
            peerPort.leave();
        }
        System.out.println();
        if (!(dpdkSide && oursSide)) {
            System.out.println("(one side measured (--sides " + String.join(",", sides) + "): no ratio; load average after: " + loadAverage() + ")");
            System.exit(0);
        }
        System.out.println(calibration
                ? "| frame | DPDK net_vhost, first (pkt/s) | DPDK net_vhost, second (pkt/s) | second/first | median of round ratios |"
                : "| frame | DPDK net_vhost (pkt/s) | jvbus vhost-user (pkt/s) | ours/DPDK | median of round ratios |");
        System.out.println(calibration
                ? "|------:|------------------------------:|-------------------------------:|-------------:|-----------------------:|"
                : "|------:|-----------------------:|-------------------------:|----------:|-----------------------:|");
        for (var e : results.entrySet()) {
            long[] dv = e.getValue()[0], ov = e.getValue()[1];
            long d = median(dv), o = median(ov);
            long[] ratios = new long[dv.length];   // per round, in thousandths: a load change within a round hits both sides
            for (int i = 0; i < dv.length; i++) ratios[i] = ov[i] * 1000 / Math.max(1, dv[i]);
            System.out.printf("| %4d B | %,22d | %,24d | %9.2f | %22.2f |%n", e.getKey(), d, o, (double) o / Math.max(1, d),
                    median(ratios) / 1000.0);
        }
        System.out.println("(medians over rounds; load average after: " + loadAverage() + "; testpmd logs in " + logs.toAbsolutePath() + ")");
        System.exit(0);
    }

    /**
     * One client's measured window, the share of its packets its port refused over its whole life, (ours) our worker's
     * busy nanoseconds per packet over the window (NaN for DPDK's), and the share of the window its forwarding thread
     * was on its CPU, and the free page reports the kernel made within the window (0 where the turn was settled; see
     * FreePageReporting).
     */
    private record Run(long pps, double refused, double busyNanosPerPacket, double frontEndOnCpu, long checkPps, long reports) {}

    /**
     * Starts a client on {@code sock}, measures its TX-packets (and, for ours, the in-process {@code check}) over the window, ends the client and
     * reads its final statistics. What the client refused says who set the pace: testpmd's txonly builds a burst
     * whether or not the ring has room, and counts what the port did not take as TX-dropped. Near 0: the back-end
     * took every burst, and the front-end set the pace; large: the ring was full at times. Over the client's whole
     * life, its first second included, when our worker's hot path is recompiled for the new session: for ours, the
     * worker's busy share over the window is the direct sign.
     */
    private static Run measureClient(String name, Path logs, Path sock, int size, Counter check, PollGroups groups,
                                     double warmup, double seconds, FreePageReporting reporting) throws Exception {
        Pmd client = startClient(name, logs, sock, size);
        Window w;
        try {
            w = measure(client, check, groups, warmup, seconds, reporting);
        } finally {
            client.close();
        }
        return new Run(w.pps(), client.txRefusedShare(), w.busyNanosPerPacket(), w.frontEndOnCpu(), w.checkPps(), w.reports());
    }

    private static String percent(double share) {
        return Double.isNaN(share) ? "?" : String.format("%.0f %%", share * 100);
    }

    /** A share measured on both sides of a round ("dpdk 3 %, ours 5 %"), or the second side's alone when the first was not run. */
    private static String sharesBySide(String firstName, Run first, String secondName, Run second, java.util.function.ToDoubleFunction<Run> share) {
        return bySide(firstName, first, secondName, second, r -> percent(share.applyAsDouble(r)));
    }

    /** The free page reports in both sides' windows ("dpdk 0, ours 3"), or the second side's alone when the first was not run. */
    private static String reportsBySide(String firstName, Run first, String secondName, Run second) {
        return bySide(firstName, first, secondName, second, r -> String.valueOf(r.reports()));
    }

    private static String bySide(String firstName, Run first, String secondName, Run second, java.util.function.Function<Run, String> value) {
        String b = value.apply(second);
        return first != null ? firstName + " " + value.apply(first) + ", " + secondName + " " + b : b;
    }

    /** One round of DPDK's back-end: a testpmd with {@code net_vhost} in rxonly, forwarding on lcore 1, and a client on it. */
    private static Run dpdkRun(Path logs, Path dir, int seq, int size, double warmup, double seconds, FreePageReporting reporting) throws Exception {
        Path sock = dir.resolve("dpdk-" + seq + ".sock");
        try (Pmd backend = Pmd.start("dpdk-vhost-" + seq, logs, List.of("-l", "0-1"), "net_vhost0,iface=" + sock,
                List.of("--forward-mode=rxonly", "-i"))) {
            backend.awaitReady();
            backend.command("start");
            backend.await(FWD_STARTED, 10);
            return measureClient("dpdk-client-" + seq, logs, sock, size, null, null, warmup, seconds, reporting);
        }
    }

    /**
     * What our side prints beside its rate, per 1000 tx buffers over the client's life: doorbells the client rang
     * (drained by our worker when it slept) and interrupts we sent, the per-buffer syscalls the worker loop should
     * avoid; and buffers per publication of the used index (each publication decides once whether to signal, sent or
     * suppressed, so this is our batch as the worker found the ring: at most TX_BATCH, 64); and the lines our worker
     * evicted (CacheLines; per 1000 buffers, 250 where it evicts the descriptor lines all the time, 4 descriptors to a
     * line, 750 with half the frame lines, 1250 with all of them; 0 where its probes found that eviction does not pay,
     * or where it is unavailable).
     */
    private record OursExtras(double kicksPerThousand, double irqsPerThousand, double buffersPerPublication, double evictedPerThousand) {
        /** Our tx queue's counters and the peer's before a round. */
        record Start(QueueCounters txq, long frames, long bytes, long kicks, long sent, long suppressed, long buffers, long evicted) {
            OursExtras end(Device dev, CountingPort peer, int size) throws InterruptedException {
                long txBufs = Math.max(1, txq.buffers() - buffers);
                long f = peer.frames - frames, b = peer.bytes - bytes;
                if (f == 0 || b != f * size)   // every frame counted is a whole frame of the size asked for
                    throw new IllegalStateException("ours: " + f + " frames of " + b + " bytes, expected " + size + " B each");
                awaitFree(dev);
                long publications = Math.max(1, txq.notificationsSent() - sent + txq.notificationsSuppressed() - suppressed);
                return new OursExtras((txq.kicks() - kicks) * 1000.0 / txBufs, (txq.notificationsSent() - sent) * 1000.0 / txBufs,
                        (double) txBufs / publications, (txq.linesEvicted() - evicted) * 1000.0 / txBufs);
            }
        }

        static Start start(Device dev, CountingPort peer) {
            QueueCounters txq = dev.queueCounters(VirtioNetModel.TX0);
            return new Start(txq, peer.frames, peer.bytes, txq.kicks(), txq.notificationsSent(), txq.notificationsSuppressed(), txq.buffers(),
                    txq.linesEvicted());
        }
    }

    /** One untimed client session on our back-end, {@code seconds} long: what our JVM compiles for the data path, compiled. */
    private static void jitWarmup(String name, Path logs, Path sock, int size, double seconds) throws InterruptedException {
        try (Pmd client = startClient(name, logs, sock, size)) {
            Thread.sleep((long) (seconds * 1000));
        }
    }

    private static Pmd startClient(String name, Path logs, Path sock, int size) throws InterruptedException {
        Pmd client = Pmd.start(name, logs, List.of("-l", "0-1", "--main-lcore", "1"),
                "net_virtio_user0,path=" + sock + ",mac=" + MacAddress.toString(DEV_MAC),
                List.of("--forward-mode=txonly", "--txpkts=" + size, "--eth-peer=0," + MacAddress.toString(PEER_MAC), "-i", "--auto-start"));
        client.await(FWD_STARTED, 30);
        return client;
    }

    /**
     * Packets/s the client's port sent over the window, after the warm-up; with {@code check} and {@code groups}
     * (ours), also the in-process count's rate and our worker's busy nanoseconds per packet over the same window.
     */
    private static Window measure(Pmd client, Counter check, PollGroups groups, double warmup, double seconds, FreePageReporting reporting) throws Exception {
        Thread.sleep((long) (warmup * 1000));
        WorkerWaits w0 = WorkerWaits.of(groups);
        long r0 = client.forwardingRunNanos(), u0 = System.nanoTime();
        long k0 = check == null ? 0 : check.get(), v0 = System.nanoTime();
        long p0 = reporting.reports();
        Reading c0 = Reading.of(client);
        Thread.sleep((long) (seconds * 1000));
        Reading c1 = Reading.of(client);
        long reports = reporting.reports() - p0;
        long k1 = check == null ? 0 : check.get(), v1 = System.nanoTime();
        long r1 = client.forwardingRunNanos(), u1 = System.nanoTime();
        WorkerWaits w1 = WorkerWaits.of(groups);
        if (!client.alive()) throw new IllegalStateException(client.name + " died; see its log");
        double onCpu = r0 < 0 || r1 < 0 ? Double.NaN : (r1 - r0) / (double) (u1 - u0);
        long checkPps = check == null ? -1 : (long) ((k1 - k0) / ((v1 - v0) / 1e9));
        return new Window(c1.rateSince(c0), WorkerWaits.busyNanosPer(w0, w1, k1 - k0), onCpu, checkPps, reports);
    }

    /** The client's TX-packets, timed at the midpoint between the question and the console's answer. */
    private record Reading(long packets, long at) {
        static Reading of(Pmd client) throws Exception {
            long asked = System.nanoTime();
            long packets = client.txPackets();
            return new Reading(packets, asked + (System.nanoTime() - asked) / 2);
        }

        long rateSince(Reading earlier) {
            return (long) ((packets - earlier.packets) / ((at - earlier.at) / 1e9));
        }
    }

    /**
     * {@code frontEndOnCpu}: the share of the window the client's forwarding thread was on its CPU (NaN if unknown);
     * {@code checkPps}: the in-process count's rate (-1 if none).
     */
    private record Window(long pps, double busyNanosPerPacket, double frontEndOnCpu, long checkPps, long reports) {}

    /**
     * The waits of the one poll group that has members (our tx queue's: a device puts only its tx queues in groups),
     * at a moment. Its wall time minus its waits is the time it worked: near all of it, and our worker set the pace;
     * less, and it waited for the front-end. Null without groups, or with none or several busy (then no figure).
     */
    private record WorkerWaits(DoorbellWait doorbells, long waitedNanos, long at) {
        static WorkerWaits of(PollGroups groups) {
            if (groups == null) return null;
            List<PollGroup> live = groups.groups().stream().filter(g -> g.size() > 0).toList();
            if (live.size() != 1) return null;
            DoorbellWait w = live.getFirst().doorbellWait();
            return w == null ? null : new WorkerWaits(w, w.waitedNanos(), System.nanoTime());
        }

        /** Busy nanoseconds per packet between two samples of the same wait; NaN if there is no such pair. */
        static double busyNanosPer(WorkerWaits a, WorkerWaits b, long packets) {
            if (a == null || b == null || a.doorbells != b.doorbells || packets <= 0) return Double.NaN;
            long busy = (b.at - a.at) - (b.waitedNanos - a.waitedNanos);
            return Math.max(0, busy) / (double) packets;
        }
    }

    private interface Counter { long get() throws Exception; }

    static void awaitFree(Device dev) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (dev.holder().isPresent()) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("the device was not freed after the client ended");
            Thread.sleep(10);
        }
    }

    private static long median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    /**
     * The bus-side port on the switch, as a station whose MAC the switch knows (an operator's port assigned its
     * address: in the MAC table from the start), so that testpmd's unicast to it is switched to it alone. The port
     * never sends, so unassigned it would stay unknown and the switch would flood every frame (to it, the only other
     * port): bench-vhost did so before session 16; {@code -Djvbus.bench.peerMac=false} gives that setup again.
     */
    static SwitchPort joinPeer(L2Switch sw, CountingPort peer, long mac) {
        return "false".equals(System.getProperty("jvbus.bench.peerMac")) ? sw.join(peer) : sw.join(peer, mac);
    }

    /**
     * The bus-side port: copies each frame the switch delivers into its own buffer (as DPDK's rxonly
     * back-end copies each packet out of the ring into an mbuf) and counts it. One delivering thread
     * at a time (the switch's port lock).
     */
    static final class CountingPort implements NetPort {
        private static final java.lang.invoke.VarHandle FRAMES, BYTES;

        static {
            try {
                java.lang.invoke.MethodHandles.Lookup l = java.lang.invoke.MethodHandles.lookup();
                FRAMES = l.findVarHandle(CountingPort.class, "frames", long.class);
                BYTES = l.findVarHandle(CountingPort.class, "bytes", long.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        /**
         * Read by the bench's thread (volatile); written by the one delivering thread with release stores, not
         * volatile ones: a volatile {@code ++} is a full fence per counter per frame (a fifth of this path's CPU in
         * {@link SwitchPathCpu}'s profile), which DPDK's rxonly, the port this stands in for, does not pay.
         */
        volatile long frames, bytes;
        /**
         * Where each frame is copied: native memory of the global scope, written at its host address through
         * {@link HostMemory#ALL}, as a receiving device writes its guest's rx buffers and as DPDK's rxonly writes its
         * mbufs. Until session 26 this was a heap array, whose checked copy (bounds, liveness, read-only, then a call
         * to the copy stub) took 6-7 % of our worker's time per frame in bench-vhost's profile: a cost of this stand-in
         * that no device of ours pays.
         */
        private final long buf = Arena.global().allocate(FrameOffload.MAX_GSO_FRAME, 64).address();

        @Override public String name() { return "bench-peer"; }

        @Override
        public DropReason deliver(MemorySegment frame, long offset, int length) {
            return deliverStaying(frame, offset, length, FrameOffload.NONE, NO_ORIGIN);
        }

        /**
         * What the switch calls, and where the copy is made: NetPort's defaults reach the three-argument deliver through
         * three adapters (this one, then the five- and four-argument deliver), and with them the copy sat so deep in the
         * sender's compiled code that C2 stopped inlining ({@code MaxInlineLevel}, 15): the small checks in
         * {@code Unsafe.copyMemory} became calls, three per frame ({@code -XX:+PrintInlining}: "inlining too deep"). A
         * device's port is not that deep (bench-switch's path inlines all of it), nor is DPDK's rxonly, which this port
         * stands in for. Takes no offloads: the header is dropped, as the defaults drop it.
         */
        @Override
        public DropReason deliverStaying(MemorySegment frame, long offset, int length, FrameOffload offload, int origin) {
            HostMemory.copy(frame, offset, HostMemory.ALL, buf, Math.min(length, FrameOffload.MAX_GSO_FRAME));   // unchecked: never past the buffer
            FRAMES.setRelease(this, (long) FRAMES.getOpaque(this) + 1);
            BYTES.setRelease(this, (long) BYTES.getOpaque(this) + length);
            return null;
        }
    }

    /** One testpmd process, its console kept in memory and copied to a log; killed with its children on close. */
    static final class Pmd implements AutoCloseable {
        final String name;
        private final Process process;
        private final OutputStream stdin;
        private final List<String> lines = new ArrayList<>();
        private final Thread console;   // copies testpmd's output into lines and its log

        private Pmd(String name, Process process, Path log) {
            this.name = name;
            this.process = process;
            this.stdin = process.getOutputStream();
            this.console = Thread.ofPlatform().daemon().name(name).start(() -> pump(log));
        }

        static Pmd start(String name, Path logs, List<String> cores, String vdev, List<String> app) {
            return start(name, logs, cores, List.of(vdev), app);
        }

        /** A testpmd with one port per {@code vdevs} entry, port i being vdevs[i]. */
        static Pmd start(String name, Path logs, List<String> cores, List<String> vdevs, List<String> app) {
            List<String> cmd = new ArrayList<>(List.of("timeout", "--kill-after=5", "120s", "stdbuf", "-oL", "-eL",
                    "dpdk-testpmd", "--no-huge", "-m", "512"));
            cmd.addAll(cores);
            cmd.addAll(List.of("--no-pci", "--file-prefix=" + name + "-" + ProcessHandle.current().pid(), "--log-level=lib.eal:warning"));
            for (String vdev : vdevs) cmd.addAll(List.of("--vdev", vdev));
            cmd.addAll(List.of("--", "--total-num-mbufs=8192", "--disable-link-check"));
            cmd.addAll(app);
            try {
                Path log = logs.resolve(name + ".log");
                Files.writeString(log, "$ " + String.join(" ", cmd) + "\n");
                return new Pmd(name, new ProcessBuilder(cmd).redirectErrorStream(true).start(), log);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private void pump(Path log) {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                 var w = Files.newBufferedWriter(log, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND)) {
                String line;
                while ((line = r.readLine()) != null) {
                    w.write(line);
                    w.newLine();
                    w.flush();
                    synchronized (this) {
                        lines.add(line);
                        notifyAll();
                    }
                }
            } catch (IOException ignored) {
            }
            synchronized (this) { notifyAll(); }
        }

        boolean alive() { return process.isAlive(); }

        /**
         * Nanoseconds testpmd's forwarding thread (its one worker lcore, {@code rte-worker-*}) has run on a CPU
         * ({@code /proc/PID/task/TID/schedstat}), or -1 if it is not found. Over a window, against the wall time, it says
         * how much of its core the front-end had: a round whose front-end lost its core to something else on the machine
         * (a kernel thread, this VM's agent) ran slower for that reason alone, whichever back-end it ran against.
         */
        long forwardingRunNanos() {
            for (ProcessHandle h : process.descendants().toList()) {
                Path tasks = Path.of("/proc", Long.toString(h.pid()), "task");
                try (var ts = Files.list(tasks)) {
                    for (Path t : ts.toList()) {
                        if (!Files.readString(t.resolve("comm")).startsWith("rte-worker")) continue;
                        return Long.parseLong(Files.readString(t.resolve("schedstat")).split(" ")[0]);
                    }
                } catch (IOException | RuntimeException e) {
                    // gone, or not a testpmd: try the next
                }
            }
            return -1;
        }

        void command(String line) throws IOException {
            stdin.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            stdin.flush();
        }

        /** Waits for a line matching {@code p} at or after line {@code from}; its index. */
        synchronized int await(int from, Pattern p, double seconds) throws InterruptedException {
            long deadline = System.nanoTime() + (long) (seconds * 1e9);
            for (int i = from; ; ) {
                for (; i < lines.size(); i++) if (p.matcher(lines.get(i)).find()) return i;
                long left = deadline - System.nanoTime();
                if (left <= 0 || !process.isAlive())
                    throw new IllegalStateException(name + ": no /" + p + "/; last lines:\n"
                            + String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size())));
                TimeUnit.NANOSECONDS.timedWait(this, Math.min(left, 100_000_000));
            }
        }

        int await(Pattern p, double seconds) throws InterruptedException { return await(0, p, seconds); }

        synchronized int mark() { return lines.size(); }

        void awaitReady() throws Exception {
            int m = mark();
            command("show port summary all");
            await(m, PORT_SUMMARY, 30);
        }

        /** TX-packets of port 0 ({@code show port stats all}). */
        long txPackets() throws Exception {
            return portStats(1)[0][1];
        }

        /** {RX-packets, TX-packets} of ports 0..ports-1, from one {@code show port stats all}. */
        long[][] portStats(int ports) throws Exception {
            int m = mark();
            command("show port stats all");
            long[][] out = new long[ports][2];
            int at = m;
            for (int p = 0; p < ports; p++) {
                at = await(at, Pattern.compile("NIC statistics for port " + p + "\\b"), 10);
                at = await(at, RX_PACKETS, 10);
                out[p][0] = group(RX_PACKETS, at);
                at = await(at, TX_PACKETS, 10);
                out[p][1] = group(TX_PACKETS, at);
            }
            return out;
        }

        /**
         * After {@link #close}: TX-dropped / TX-total of the last forward statistics testpmd printed (on quit, its
         * whole life), or NaN if it printed none (its console is read to its end first, for at most 5 s).
         */
        double txRefusedShare() throws InterruptedException {
            console.join(5000);
            synchronized (this) {
                for (int i = lines.size() - 1; i >= 0; i--) {
                    Matcher m = TX_TOTALS.matcher(lines.get(i));
                    if (m.find()) {
                        long total = Long.parseLong(m.group(2));
                        return total == 0 ? Double.NaN : (double) Long.parseLong(m.group(1)) / total;
                    }
                }
            }
            return Double.NaN;
        }

        private synchronized long group(Pattern p, int line) {
            Matcher x = p.matcher(lines.get(line));
            if (!x.find()) throw new IllegalStateException("unreachable");
            return Long.parseLong(x.group(1));
        }

        /**
         * Ends testpmd the way a user would (a newline ends --auto-start, {@code quit} the prompt), so it
         * stops its port cleanly; signals only if it does not. One SIGTERM, to testpmd itself: timeout
         * would pass a second one on, and a second SIGTERM during testpmd's clean-up kills it half way.
         */
        @Override
        public void close() throws InterruptedException {
            try {
                command("");
                command("quit");
            } catch (IOException ignored) {
            }
            if (process.waitFor(10, TimeUnit.SECONDS)) return;
            List<ProcessHandle> family = process.toHandle().descendants().toList();
            family.forEach(ProcessHandle::destroy);
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                family.forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
            for (ProcessHandle h : family) h.onExit().completeOnTimeout(null, 5, TimeUnit.SECONDS).join();
        }
    }
}
