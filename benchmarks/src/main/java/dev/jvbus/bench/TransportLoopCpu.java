package dev.jvbus.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@link TransportLoopJmh}'s loop (send a batch, receive it, in one thread) measured in <em>thread CPU
 * time</em>, round by round: one child JVM per transport, kept alive and idle between rounds, the parent
 * asking them in turn (A, B, ... then ..., B, A) for one window each. CPU time, not wall time, is what
 * the issue asks for (the CPU a message costs), and on a shared 2-core machine it is far steadier than
 * JMH's wall-clock average: a window in which the thread was descheduled costs no extra CPU time (cache
 * and SMT interference from other processes still do, which is why the contenders alternate).
 *
 * <p>Each transport runs in its own JVM so that neither sees the other's classes at its call sites
 * (as in JMH's forks), and each JVM compiles the consumer's {@code receive} on its own ({@link #RECEIVE}),
 * so that every contender's loop has the same shape in every JVM. Reported: each round's ns/message per transport, each one's median, and every
 * contender's cost against the first as the median of per-round ratios with its spread ({@link Stats.Ratio}).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
 * -cp benchmarks/target/jvbus-benchmarks.jar dev.jvbus.bench.TransportLoopCpu [--transports agrona,split]
 * [--size 16] [--rounds 15] [--window-ms 300] [--warmup-ms 6000]}, under {@code taskset -c N}: the children inherit
 * the one CPU, so every contender runs on the same vCPU (the two vCPUs of these VMs can differ by 1.5x for minutes,
 * benchmarks/README "CPU per message, session 15"). A contender {@code split@other.jar} runs the split transport of
 * another build, to compare a change before and after, and {@code split#-Dkey=value+...}
 * (after any {@code @jar}) gives that contender's JVM these options, to compare settings of one build.
 */
public final class TransportLoopCpu {
    private TransportLoopCpu() {}

    /** Every transport's {@code Consumer.receive} (CompileCommand pattern): see {@link Child#start}. */
    static final String RECEIVE = "dev.jvbus.bench.*::receive";

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--child")) {
            child(args[1], Integer.parseInt(args[2]));
            return;
        }
        List<String> transports = List.of("agrona", "split");
        int size = 16, rounds = 15;
        long windowMs = 300, warmupMs = 6000;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--transports" -> transports = List.of(args[++i].split(","));
                case "--size" -> size = Integer.parseInt(args[++i]);
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--window-ms" -> windowMs = Long.parseLong(args[++i]);
                case "--warmup-ms" -> warmupMs = Long.parseLong(args[++i]);
                default -> {
                    System.out.println("usage: TransportLoopCpu [--transports a,b] [--size N] [--rounds N] [--window-ms MS] [--warmup-ms MS]");
                    System.exit(2);
                }
            }
        }
        compare(TransportLoopCpu.class, "message", transports, size, rounds, windowMs, warmupMs);
    }

    /** The CPUs this process (and so its children) may run on, as the kernel lists them ("0", "0-1"). */
    static String cpusAllowed() {
        try {
            for (String l : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status")))
                if (l.startsWith("Cpus_allowed_list:")) return l.substring(l.indexOf(':') + 1).trim();
        } catch (java.io.IOException e) {
            // not Linux: say so below
        }
        return "?";
    }

    /**
     * The rounds: one child JVM per contender ({@code main --child CONTENDER SIZE}, answering "run MS" with its CPU
     * ns per unit), asked in turn A, B, ... then ..., B, A; prints each round, each one's median and the cost of every
     * contender against the first as the median of per-round ratios. Shared with {@link SwitchPathCpu}.
     */
    static void compare(Class<?> main, String unit, List<String> transports, int size, int rounds, long windowMs, long warmupMs)
            throws Exception {
        int n = transports.size();
        List<Child> children = new ArrayList<>();
        try {
            for (String t : transports) children.add(Child.start(main, t, size));
            for (Child c : children) c.run(warmupMs);          // JIT warm-up, not reported
            double[][] ns = new double[n][rounds];
            String load = uptime();
            for (int r = 0; r < rounds; r++) {
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  round %2d:", r + 1));
                for (int k = 0; k < n; k++) {
                    int j = r % 2 == 0 ? k : n - 1 - k;           // A, B, ... then ..., B, A
                    ns[j][r] = children.get(j).run(windowMs);
                }
                for (int j = 0; j < n; j++) line.append(String.format(Locale.ROOT, "  %s %6.2f", transports.get(j), ns[j][r]));
                System.out.println(line);
            }
            String cpus = cpusAllowed();
            System.out.printf(Locale.ROOT, "CPU ns/%s, %d B, %d rounds x %d ms per contender, cpus %s, load before %s, after %s%n",
                    unit, size, rounds, windowMs, cpus, load, uptime());
            if (cpus.contains(",") || cpus.contains("-"))
                System.out.println("  (not pinned: on these VMs one vCPU can run 1.5x slower than the other for minutes (most likely while its host core's other"
                        + " thread is busy), and a child that moves between them moves between speeds; run under taskset -c N)");
            for (int j = 0; j < n; j++) {
                System.out.printf(Locale.ROOT, "  %-8s median %6.2f ns/%s [min %.2f, max %.2f]%s%n", transports.get(j),
                        Stats.median(ns[j]), unit, Stats.quantile(ns[j], 0), Stats.quantile(ns[j], 1),
                        j == 0 ? "" : "   cost vs " + transports.get(0) + ": " + Stats.Ratio.of(ns[j], ns[0]));
            }
        } finally {
            for (Child c : children) c.close();
        }
    }

    private static String uptime() {
        try {
            String s = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).trim();
            return String.join(" ", Arrays.copyOf(s.split(" "), 3));
        } catch (IOException e) {
            return "?";
        }
    }

    /** A child JVM running one transport's loop: a line "run MS" in, "ns/msg" out. */
    private record Child(String transport, Process process, BufferedReader out, OutputStream in) implements AutoCloseable {
        static Child start(Class<?> main, String transport, int size) throws IOException {
            String java = ProcessHandle.current().info().command().orElse("java");
            List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
                    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"));
            cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                    .filter(a -> a.startsWith("-XX:") || a.startsWith("-Xm")).toList());
            // The consumer's receive is compiled on its own, never inlined into the loop that also sends: as in the
            // cross-process bench, where it runs in its own process's loop. Left to C2, whether it was inlined
            // depended on which compile finished first, and the split figure was bimodal across JVMs (26 vs 31
            // ns/msg: inlined, the receive loop hit C2's node cutoff and called pushUsed and the sink per message).
            // Every contender's child gets the same rule (Agrona's receive only calls its ring's read).
            cmd.addAll(List.of("-XX:CompileCommand=quiet", "-XX:CompileCommand=dontinline," + RECEIVE));
            String spec = transport;
            int hash = spec.indexOf('#');          // transport#-Dk=v+-Dk2=v2: that child gets these JVM options too
            if (hash >= 0) {
                cmd.addAll(List.of(spec.substring(hash + 1).split("\\+")));
                spec = spec.substring(0, hash);
            }
            int at = spec.indexOf('@');             // transport@classpath: that child runs another build (before/after)
            String cp = at < 0 ? System.getProperty("java.class.path") : spec.substring(at + 1);
            cmd.addAll(List.of("-cp", cp, main.getName(),
                    "--child", at < 0 ? spec : spec.substring(0, at), Integer.toString(size)));
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            return new Child(transport, p, new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)),
                    p.getOutputStream());
        }

        double run(long ms) throws IOException {
            in.write(("run " + ms + "\n").getBytes(StandardCharsets.UTF_8));
            in.flush();
            String l = out.readLine();
            if (l == null) throw new IOException(transport + " child ended");
            return Double.parseDouble(l.trim());
        }

        @Override
        public void close() {
            try {
                in.close();
            } catch (IOException ignored) {
            }
            process.destroy();
        }
    }

    private static void child(String transport, int size) throws Exception {
        TransportLoopJmh loop = new TransportLoopJmh();
        loop.transport = transport;
        loop.size = size;
        loop.setup();
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        long sink = 0;
        try {
            for (String l; (l = in.readLine()) != null; ) {
                long ms = Long.parseLong(l.substring(4).trim());
                long end = System.nanoTime() + ms * 1_000_000;
                long cpu0 = mx.getCurrentThreadCpuTime();
                long batches = 0;
                do {
                    for (int i = 0; i < 256; i++) sink += loop.sendThenReceive();
                    batches += 256;
                } while (System.nanoTime() < end);
                long cpu = mx.getCurrentThreadCpuTime() - cpu0;
                System.out.println((double) cpu / (batches * TransportLoopJmh.BATCH));
                System.out.flush();
            }
        } finally {
            loop.tearDown();
        }
        if (sink == 42) System.err.print("");
    }
}
