package dev.jvbus.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Cross-process ring benchmark (issue 3). The parent only orchestrates: for every case (transport,
 * message size, wait mode, load) it sets the transport up, starts a fresh producer JVM and a fresh
 * consumer JVM, runs warm-up runs, then measured runs of n messages each, and reports messages/s
 * (median, min, max). Each message carries a sequence number that the consumer checks.
 *
 * <p>A run's time is from the producer's clock just before its first send to the consumer's clock
 * just after its last receipt; both are {@code System.nanoTime()}, i.e. CLOCK_MONOTONIC, which is
 * one clock for all processes on a Linux host.
 *
 * <p>The machines are shared: every run's "others%" (CPU taken by processes that are not ours,
 * {@link CpuAccount}) is measured, runs above --max-others are redone, and the table shows the mean.
 *
 * <p>Load "burn" runs the same cases while a third JVM spins on one core ({@link Burner}).
 *
 * <pre>
 * ./jvbus bench --metrics [--rounds 12] [--round-seconds 2] [--sizes 16,1500] [--queues 64]   (MetricsCostBench)
 * ./jvbus bench [--quick] [--csv[=FILE]] [--pin] [--forks 2] [--transports pipe,pipe-nio,socket,agrona,split,ioq]
 *               [--sizes 16,1500] [--modes block,spin,backoff,adaptive] [--load none|burn|both]
 *               [--runs 5] [--max-others 25] [--run-seconds 0.5] [--warmup-seconds 1.5] [--ring-bytes 262144]
 * </pre>
 */
public final class RingBench {
    private RingBench() {}

    static final List<Transport> TRANSPORTS = List.of(
            new PipeTransport(),
            new NioPipeTransport(),
            new UnixSocketTransport(),
            new AgronaTransport(),
            new SplitRingTransport(), // SLOT: jvbus split ring (virtio), not plugged in yet
            new IoqRingTransport());  // SLOT: jvbus IOQ ring, not plugged in yet

    static Transport transport(String name) {
        return TRANSPORTS.stream().filter(t -> t.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("unknown transport " + name));
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0) {
            switch (args[0]) {
                case "--child" -> { Child.main(Arrays.copyOfRange(args, 1, args.length)); return; }
                case "--burn" -> { Burner.main(); return; }
                case "--metrics" -> { MetricsCostBench.main(Arrays.copyOfRange(args, 1, args.length)); return; }
                default -> { }
            }
        }
        Options o = Options.parse(args);
        if (o == null) return;
        System.exit(new Parent(o).run());
    }

    // ------------------------------------------------------------------------------------ options

    record Options(List<String> transports, List<Integer> sizes, List<WaitMode> modes, List<String> loads,
                   int runs, int forks, double runSeconds, double warmupSeconds, int ringBytes, double maxOthers,
                   boolean pin, boolean csv, Path csvFile, boolean quick) {
        static Options parse(String[] args) {
            List<String> transports = TRANSPORTS.stream().map(Transport::name).toList();
            List<Integer> sizes = List.of(16, 1500);
            List<WaitMode> modes = List.of(WaitMode.values());
            String load = "both";
            int runs = 5, forks = 2;
            boolean pin = false;
            double runSeconds = 0.5, warmupSeconds = 1.5;
            int ringBytes = 256 * 1024;
            double maxOthers = 25;
            boolean csv = false, quick = false;
            Path csvFile = null;
            Map<String, String> kv = new LinkedHashMap<>();
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("--quick")) { quick = true; continue; }
                if (a.equals("--pin")) { pin = true; continue; }
                if (a.equals("--csv")) { csv = true; continue; }
                if (a.startsWith("--csv=")) { csv = true; csvFile = Path.of(a.substring(6)); continue; }
                if (a.equals("--help") || a.equals("-h")) { usage(); return null; }
                if (a.startsWith("--") && a.contains("=")) { kv.put(a.substring(2, a.indexOf('=')), a.substring(a.indexOf('=') + 1)); continue; }
                if (a.startsWith("--") && i + 1 < args.length) { kv.put(a.substring(2), args[++i]); continue; }
                throw new IllegalArgumentException("bad argument " + a + " (try --help)");
            }
            if (quick) { runs = 3; forks = 1; runSeconds = 0.2; warmupSeconds = 0.5; }
            for (var e : kv.entrySet()) {
                String v = e.getValue();
                switch (e.getKey()) {
                    case "transports" -> transports = List.of(v.split(","));
                    case "sizes" -> sizes = Arrays.stream(v.split(",")).map(Integer::valueOf).toList();
                    case "modes" -> modes = Arrays.stream(v.split(",")).map(WaitMode::parse).toList();
                    case "load" -> load = v;
                    case "runs" -> runs = Integer.parseInt(v);
                    case "forks" -> forks = Integer.parseInt(v);
                    case "run-seconds" -> runSeconds = Double.parseDouble(v);
                    case "warmup-seconds" -> warmupSeconds = Double.parseDouble(v);
                    case "ring-bytes" -> ringBytes = Integer.parseInt(v);
                    case "max-others" -> maxOthers = Double.parseDouble(v);
                    default -> throw new IllegalArgumentException("unknown option --" + e.getKey() + " (try --help)");
                }
            }
            transports.forEach(RingBench::transport);
            for (int s : sizes) if (s < Message.MIN_SIZE) throw new IllegalArgumentException("size < 16: " + s);
            if (Integer.bitCount(ringBytes) != 1) throw new IllegalArgumentException("--ring-bytes must be a power of two");
            List<String> loads = switch (load) {
                case "none" -> List.of("none");
                case "burn" -> List.of("burn");
                case "both" -> List.of("none", "burn");
                default -> throw new IllegalArgumentException("--load none|burn|both");
            };
            return new Options(transports, sizes, modes, loads, runs, forks, runSeconds, warmupSeconds, ringBytes, maxOthers, pin, csv, csvFile, quick);
        }

        static void usage() {
            System.out.println("""
                usage: ./jvbus bench [options]
                  --quick                 1 fork, 3 runs of ~0.2 s after ~0.5 s warm-up per case
                                          (default: 2 forks, each 5 runs of ~0.5 s after 1.5 s warm-up)
                  --forks N               fresh producer+consumer JVM pairs per case; runs of all forks are pooled
                  --max-others P          redo a run (at most 3 extra tries per run) when other people's processes
                                          took more than P % of the machine's CPU during it (default 25; 100 = off)
                  --pin                   pin the producer's main thread to cpu 0 and the consumer's to cpu 1
                  --csv | --csv=FILE      also print CSV (to stdout after the table, or to FILE)
                  --transports LIST       pipe,pipe-nio,socket,agrona,split,ioq (default: all that are plugged in)
                  --sizes LIST            message sizes in bytes (default 16,1500)
                  --modes LIST            block,spin,backoff,adaptive (default: every mode a transport has)
                  --load none|burn|both   burn = a third JVM spins on one core during the cases (default both)
                  --runs N --run-seconds S --warmup-seconds S --ring-bytes N (shared-memory ring capacity)
                transports: pipe, socket = one write(2)/read(2) per message (raw FFM calls); pipe-nio = same FIFO through FileChannel; agrona = OneToOneRingBuffer in /dev/shm;
                split, ioq = jvbus rings (slots).""");
        }
    }

    // ------------------------------------------------------------------------------------ parent

    record Result(String transport, boolean baseline, int size, WaitMode mode, String load,
                  double[] mps, long messagesPerRun, long errors, double othersPercent, int rejected, String failure) {
        double median() { return stat(0.5); }
        double min() { return stat(0); }
        double max() { return stat(1); }
        private double stat(double q) {
            if (mps.length == 0) return Double.NaN;
            double[] s = mps.clone();
            Arrays.sort(s);
            if (q == 0.5) return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
            return s[(int) Math.round(q * (s.length - 1))];
        }
        String key() { return transport + "-" + mode.label(); }
    }

    static final class Parent {
        private final Options o;
        private final List<Result> results = new ArrayList<>();
        private ChildProcess burner;

        Parent(Options o) { this.o = o; }

        int run() throws IOException {
            System.err.printf(Locale.ROOT, "jvbus ring bench: %d cpus, forks=%d, runs=%d x %.2fs, warm-up %.2fs, ring %d bytes, max-others %.0f%%, pin=%b%n",
                    Runtime.getRuntime().availableProcessors(), o.forks, o.runs, o.runSeconds, o.warmupSeconds, o.ringBytes, o.maxOthers, o.pin);
            for (String load : o.loads) {
                burner = null;
                try {
                    if (load.equals("burn")) {
                        burner = ChildProcess.start("burner", List.of("--burn"));
                        burner.expect("BURNING", 60_000);
                    }
                    for (String name : o.transports) {
                        Transport t = transport(name);
                        if (!t.available()) {
                            System.err.println("skip " + name + ": not plugged in yet");
                            continue;
                        }
                        for (int size : o.sizes) {
                            for (WaitMode mode : t.modes()) {
                                if (o.modes.contains(mode)) results.add(runCase(t, new Transport.Case(size, mode, o.ringBytes), load));
                            }
                        }
                    }
                } finally {
                    if (burner != null) burner.close();
                    burner = null;
                }
            }
            PrintStream out = System.out;
            Report.table(out, results);
            Report.ratios(out, results);
            if (o.csv) {
                String csv = Report.csv(results);
                if (o.csvFile != null) Files.writeString(o.csvFile, csv);
                else { out.println(); out.print(csv); }
            }
            boolean bad = results.stream().anyMatch(r -> r.errors != 0 || r.failure != null);
            return bad ? 1 : 0;
        }

        private Result runCase(Transport t, Transport.Case c, String load) {
            String label = t.name() + " " + c.size() + "B " + c.mode().label() + " load=" + load;
            System.err.print(label + " ...");
            List<Double> mps = new ArrayList<>();
            long errors = 0, n = 0;
            double others = 0;
            int rejected = 0;
            try {
                for (int f = 0; f < o.forks; f++) {
                    Fork fork = runFork(t, c);
                    errors += fork.errors;
                    others += fork.othersPercent;
                    rejected += fork.rejected;
                    n = fork.n;
                    for (double v : fork.mps) mps.add(v);
                    System.err.printf(Locale.ROOT, " fork%d %.2f", f + 1, median(fork.mps));
                }
                Result res = new Result(t.name(), t.baseline(), c.size(), c.mode(), load,
                        mps.stream().mapToDouble(Double::doubleValue).toArray(), n, errors, others / o.forks, rejected, null);
                System.err.printf(Locale.ROOT, " => %.2f M msg/s (n=%d, errors=%d, others %.0f%% cpu, %d runs redone)%n",
                        res.median(), n, errors, res.othersPercent(), rejected);
                return res;
            } catch (Exception e) {
                System.err.println(" FAILED: " + e.getMessage());
                return new Result(t.name(), t.baseline(), c.size(), c.mode(), load, new double[0], 0, errors, Double.NaN, rejected, String.valueOf(e.getMessage()));
            }
        }

        record Fork(double[] mps, long n, long errors, double othersPercent, int rejected) {}

        /** One fresh setup and one fresh pair of JVMs: warm-up runs, then the measured runs. */
        private Fork runFork(Transport t, Transport.Case c) throws Exception {
            int cpus = Runtime.getRuntime().availableProcessors();
            long errors = 0;
            try (Transport.Setup setup = t.setup(c)) {
                List<String> common = List.of(t.name(), Integer.toString(c.size()), c.mode().label(), Integer.toString(c.ringBytes()));
                try (ChildProcess consumer = ChildProcess.start("consumer", childArgs("consumer", common, o.pin && cpus > 1 ? 1 : -1, setup));
                     ChildProcess producer = ChildProcess.start("producer", childArgs("producer", common, o.pin && cpus > 1 ? 0 : -1, setup))) {
                    consumer.expect("READY", 60_000);
                    producer.expect("READY", 60_000);
                    // Warm-up: runs until the warm-up time is spent (at least two); the last one calibrates n.
                    long n = 20_000;
                    double rate = 0;
                    long warmEnd = System.nanoTime() + (long) (o.warmupSeconds * 1e9);
                    int warmRuns = 0;
                    while (warmRuns < 2 || System.nanoTime() < warmEnd) {
                        Run r = oneRun(consumer, producer, n, 60_000);
                        errors += r.errors;
                        rate = r.mps * 1e6;
                        n = Math.max(10_000, Math.min((long) (rate * Math.min(o.runSeconds, 0.25)), 50_000_000));
                        warmRuns++;
                    }
                    n = Math.max(10_000, Math.min((long) (rate * o.runSeconds), 500_000_000));
                    List<ProcessHandle> ours = new ArrayList<>(List.of(ProcessHandle.current(), consumer.handle(), producer.handle()));
                    if (burner != null) ours.add(burner.handle());
                    // Measured runs. A run during which other people's processes took more than
                    // --max-others % of the machine is thrown away and redone (at most 3 extra tries per run).
                    double[] mps = new double[o.runs];
                    int kept = 0, rejected = 0;
                    double othersSum = 0;
                    // A run that takes 20x its planned time has collapsed (a spinning side starved of CPU):
                    // the fork ends there and the case is reported as failed with the rate it had at most.
                    long timeout = Math.max(10_000, (long) (o.runSeconds * 1000 * 20));
                    while (kept < o.runs) {
                        CpuAccount cpu = CpuAccount.start(ours);
                        Run r;
                        try {
                            r = oneRun(consumer, producer, n, timeout);
                        } catch (IOException e) {
                            throw new IOException(String.format(Locale.ROOT,
                                    "run of %d messages not done in %d ms (< %.3f M msg/s): %s", n, timeout, n / (timeout / 1e3) / 1e6, e.getMessage()), e);
                        }
                        errors += r.errors;
                        // Re-plan the next run's length from this one, so a rate change does not give endless runs.
                        n = Math.max(10_000, Math.min((long) (r.mps * 1e6 * o.runSeconds), 500_000_000));
                        double oth = cpu.othersPercent();
                        if (oth > o.maxOthers && rejected < 3 * o.runs) {
                            rejected++;
                            continue;
                        }
                        mps[kept++] = r.mps;
                        othersSum += oth;
                    }
                    double others = othersSum / o.runs;
                    consumer.send("QUIT");
                    producer.send("QUIT");
                    return new Fork(mps, n, errors, others, rejected);
                }
            }
        }

        private static List<String> childArgs(String role, List<String> common, int cpu, Transport.Setup setup) {
            List<String> a = new ArrayList<>(List.of("--child", role));
            a.addAll(common);
            a.add(Integer.toString(cpu));
            a.addAll(setup.childArgs());
            return a;
        }

        private static double median(double[] v) {
            double[] s = v.clone();
            Arrays.sort(s);
            return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
        }

        record Run(double mps, long errors) {}

        private static Run oneRun(ChildProcess consumer, ChildProcess producer, long n, long timeoutMillis) throws IOException {
            consumer.send("RUN " + n);
            producer.send("RUN " + n);
            String[] sent = producer.expect("SENT", timeoutMillis);
            String[] recv = consumer.expect("RECV", timeoutMillis);
            long t0 = Long.parseLong(sent[2]);
            long t1 = Long.parseLong(recv[3]);
            long errors = Long.parseLong(recv[2]);
            return new Run(n / ((t1 - t0) / 1e9) / 1e6, errors);
        }
    }

    // ------------------------------------------------------------------------------------ children

    /** {@code --child producer|consumer TRANSPORT SIZE MODE RINGBYTES CPU|-1 [transport args...]} */
    static final class Child {
        private static final int MAX_BATCH = 4096;

        static void main(String[] a) throws Exception {
            String role = a[0];
            Transport t = transport(a[1]);
            Transport.Case c = new Transport.Case(Integer.parseInt(a[2]), WaitMode.parse(a[3]), Integer.parseInt(a[4]));
            int cpu = Integer.parseInt(a[5]);
            if (cpu >= 0) Posix.pinCurrentThread(cpu);
            List<String> targs = List.of(Arrays.copyOfRange(a, 6, a.length));
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            PrintStream out = System.out;
            if (role.equals("producer")) {
                try (Transport.Producer p = t.attachProducer(c, targs)) {
                    out.println("@READY");
                    out.flush();
                    long seq = 0;
                    String line;
                    while ((line = in.readLine()) != null && line.startsWith("RUN ")) {
                        long n = Long.parseLong(line.substring(4));
                        long t0 = System.nanoTime();
                        seq = produce(p, seq, n);
                        long t1 = System.nanoTime();
                        out.println("@SENT " + n + " " + t0 + " " + t1);
                        out.flush();
                    }
                }
            } else {
                try (Transport.Consumer k = t.attachConsumer(c, targs)) {
                    Message.Checker checker = new Message.Checker(c.size());
                    out.println("@READY");
                    out.flush();
                    String line;
                    while ((line = in.readLine()) != null && line.startsWith("RUN ")) {
                        long n = Long.parseLong(line.substring(4));
                        long before = checker.errors();
                        consume(k, checker, n);
                        long t1 = System.nanoTime();
                        out.println("@RECV " + n + " " + (checker.errors() - before) + " " + t1);
                        out.flush();
                    }
                }
            }
            System.exit(0); // do not wait for a peer that may still be blocked in read/write
        }

        private static long produce(Transport.Producer p, long seq, long n) throws IOException {
            long end = seq + n;
            for (; seq < end; seq++) p.send(seq);
            p.flush();
            return seq;
        }

        private static void consume(Transport.Consumer k, Message.Checker checker, long n) throws IOException {
            long got = 0;
            while (got < n) got += k.receive(checker, (int) Math.min(n - got, MAX_BATCH));
        }
    }
}
