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
 * Cross-process ring benchmark (issue 3). The parent only orchestrates: for every message size and
 * load it sets up every contender (transport and wait mode), each with a fresh producer JVM and a
 * fresh consumer JVM, warms them all up, then runs them round by round, A, B, C, then C, B, A
 * (issue 18: the machines' load drifts within a minute, so back-to-back cases of one transport and
 * then the next gave split/Agrona ratios from 0.28x to 2.38x). It reports messages/s (median, min,
 * max) and, against each baseline, the median of the per-round ratios with its spread and the number
 * of rounds after which that median settled. Each message carries a sequence number that the
 * consumer checks.
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
 *               [--rounds 5] [--max-others 25] [--run-seconds 0.5] [--warmup-seconds 1.5] [--ring-bytes 262144]
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
                    case "runs", "rounds" -> runs = Integer.parseInt(v);
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
                  --quick                 1 fork, 3 rounds of ~0.2 s per contender after ~0.5 s warm-up
                                          (default: 2 forks, each 5 rounds of ~0.5 s per contender after 1.5 s warm-up)
                  --rounds N              rounds per fork; in each round every contender of a size runs once, the
                                          order reversed every other round; ratios are taken round by round
                  --forks N               fresh producer+consumer JVM pairs per contender; rounds of all forks are pooled
                  --max-others P          redo a round (at most 3 extra tries per round) when other people's processes
                                          took more than P % of the machine's CPU during it (default 25; 100 = off)
                  --pin                   pin the producer's main thread to cpu 0 and the consumer's to cpu 1
                  --csv | --csv=FILE      also print CSV (to stdout after the table, or to FILE)
                  --transports LIST       pipe,pipe-nio,socket,agrona,split,ioq (default: all that are plugged in)
                  --sizes LIST            message sizes in bytes (default 16,1500)
                  --modes LIST            block,spin,backoff,adaptive (default: every mode a transport has)
                  --load none|burn|both   burn = a third JVM spins on one core during the cases (default both)
                  --run-seconds S --warmup-seconds S --ring-bytes N (shared-memory ring capacity)
                transports: pipe, socket = one write(2)/read(2) per message (raw FFM calls); pipe-nio = same FIFO through FileChannel; agrona = OneToOneRingBuffer in /dev/shm;
                split, ioq = jvbus rings (slots).""");
        }
    }

    // ------------------------------------------------------------------------------------ parent

    /**
     * One contender's figures. {@code rounds[i]} is its rate in round i (NaN where it did not run or a
     * run failed); round i of every contender of a size and load was taken within seconds of the others.
     */
    record Result(String transport, boolean baseline, int size, WaitMode mode, String load,
                  double[] rounds, long messagesPerRun, long errors, double othersPercent, int rejected, String failure) {
        /** The rates of the rounds it ran. */
        double[] mps() { return Arrays.stream(rounds).filter(v -> !Double.isNaN(v)).toArray(); }
        double median() { return stat(0.5); }
        double min() { return stat(0); }
        double max() { return stat(1); }
        private double stat(double q) {
            return Stats.quantile(mps(), q);
        }
        String key() { return transport + "-" + mode.label(); }
    }

    static final class Parent {
        private final Options o;
        private final List<Result> results = new ArrayList<>();
        private ChildProcess burner;

        Parent(Options o) { this.o = o; }

        int run() throws IOException {
            System.err.printf(Locale.ROOT, "jvbus ring bench: %d cpus, forks=%d, rounds=%d x %.2fs per contender, warm-up %.2fs, ring %d bytes, max-others %.0f%%, pin=%b%n",
                    Runtime.getRuntime().availableProcessors(), o.forks, o.runs, o.runSeconds, o.warmupSeconds, o.ringBytes, o.maxOthers, o.pin);
            for (String load : o.loads) {
                burner = null;
                try {
                    if (load.equals("burn")) {
                        burner = ChildProcess.start("burner", List.of("--burn"));
                        burner.expect("BURNING", 60_000);
                    }
                    for (int size : o.sizes) {
                        List<Contender> group = new ArrayList<>();
                        for (String name : o.transports) {
                            Transport t = transport(name);
                            if (!t.available()) {
                                System.err.println("skip " + name + ": not plugged in yet");
                                continue;
                            }
                            for (WaitMode mode : t.modes()) {
                                if (o.modes.contains(mode)) group.add(new Contender(t, new Transport.Case(size, mode, o.ringBytes)));
                            }
                        }
                        results.addAll(runGroup(group, size, load));
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

        /** One transport in one wait mode at one size: a contender of its size's group. */
        record Contender(Transport t, Transport.Case c) {
            String label() { return t.name() + "-" + c.mode().label(); }
        }

        /** A contender's pair of JVMs for one fork, warmed up, with its run length and what it measured. */
        private static final class Live implements AutoCloseable {
            final Contender who;
            final Transport.Setup setup;
            final ChildProcess consumer, producer;
            long n;
            long errors;
            String failure;

            Live(Contender who, Transport.Setup setup, ChildProcess consumer, ChildProcess producer) {
                this.who = who;
                this.setup = setup;
                this.consumer = consumer;
                this.producer = producer;
            }

            @Override
            public void close() {
                consumer.send("QUIT");
                producer.send("QUIT");
                producer.close();
                consumer.close();
                try { setup.close(); } catch (Exception ignored) { }
            }
        }

        /**
         * Runs every contender of one size round by round (A, B, C, then C, B, A, ...): the machine's load
         * drifts within a minute, so a ratio is only meaningful between runs taken seconds apart. Each
         * round's rates share one slot index across the contenders, so {@link Report} can take per-round
         * ratios. A round during which other people's processes took more than --max-others % of the
         * machine is redone (at most 3 extra tries per round). A contender that fails leaves NaN in the
         * rounds it missed and the others go on.
         */
        private List<Result> runGroup(List<Contender> group, int size, String load) throws IOException {
            int rounds = o.forks * o.runs;
            Map<Contender, double[]> mps = new LinkedHashMap<>();
            Map<Contender, long[]> stats = new LinkedHashMap<>(); // {n, errors, rejected}
            Map<Contender, String> failures = new LinkedHashMap<>();
            for (Contender c : group) {
                double[] v = new double[rounds];
                Arrays.fill(v, Double.NaN);
                mps.put(c, v);
                stats.put(c, new long[3]);
            }
            double othersSum = 0;
            int othersCount = 0, slot = 0;
            System.err.printf(Locale.ROOT, "%dB load=%s: %s%n", size, load, group.stream().map(Contender::label).toList());
            for (int f = 0; f < o.forks; f++) {
                List<Live> live = new ArrayList<>();
                try {
                    for (Contender c : group) {
                        if (failures.containsKey(c)) continue;
                        try {
                            live.add(startAndWarm(c));
                        } catch (Exception e) {
                            failures.put(c, String.valueOf(e.getMessage()));
                            System.err.println("  " + c.label() + " FAILED: " + e.getMessage());
                        }
                    }
                    List<ProcessHandle> ours = new ArrayList<>(List.of(ProcessHandle.current()));
                    for (Live l : live) { ours.add(l.consumer.handle()); ours.add(l.producer.handle()); }
                    if (burner != null) ours.add(burner.handle());
                    long timeout = Math.max(10_000, (long) (o.runSeconds * 1000 * 20));
                    for (int r = 0; r < o.runs; r++, slot++) {
                        List<Live> order = new ArrayList<>(live);
                        if (slot % 2 == 1) java.util.Collections.reverse(order);
                        for (int tries = 0; ; tries++) {
                            CpuAccount cpu = CpuAccount.start(ours);
                            for (Live l : order) {
                                if (l.failure != null) continue;
                                try {
                                    Run run = oneRun(l.consumer, l.producer, l.n, timeout);
                                    l.errors += run.errors;
                                    mps.get(l.who)[slot] = run.mps;
                                    // Re-plan the next run's length from this one, so a rate change does not give endless runs.
                                    l.n = Math.max(10_000, Math.min((long) (run.mps * 1e6 * o.runSeconds), 500_000_000));
                                } catch (IOException e) {
                                    l.failure = String.format(Locale.ROOT, "run of %d messages not done in %d ms (< %.3f M msg/s): %s",
                                            l.n, timeout, l.n / (timeout / 1e3) / 1e6, e.getMessage());
                                    failures.put(l.who, l.failure);
                                    mps.get(l.who)[slot] = Double.NaN;
                                }
                            }
                            double oth = cpu.othersPercent();
                            if (oth > o.maxOthers && tries < 3) {
                                for (Live l : order) stats.get(l.who)[2]++;
                                continue;
                            }
                            othersSum += oth;
                            othersCount++;
                            break;
                        }
                        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  round %2d:", slot + 1));
                        for (Contender c : group) line.append(String.format(Locale.ROOT, " %s %.2f", c.label(), mps.get(c)[slot]));
                        System.err.println(line);
                    }
                    for (Live l : live) { stats.get(l.who)[0] = l.n; stats.get(l.who)[1] += l.errors; }
                } finally {
                    for (Live l : live) l.close();
                }
            }
            double others = othersCount == 0 ? Double.NaN : othersSum / othersCount;
            List<Result> out = new ArrayList<>();
            for (Contender c : group) {
                long[] st = stats.get(c);
                out.add(new Result(c.t().name(), c.t().baseline(), size, c.c().mode(), load, mps.get(c), st[0], st[1], others,
                        (int) st[2], failures.get(c)));
            }
            return out;
        }

        /** A fresh setup and a fresh pair of JVMs, warmed up until the warm-up time is spent (at least two runs). */
        private Live startAndWarm(Contender who) throws Exception {
            int cpus = Runtime.getRuntime().availableProcessors();
            Transport t = who.t();
            Transport.Case c = who.c();
            Transport.Setup setup = t.setup(c);
            ChildProcess consumer = null, producer = null;
            try {
                List<String> common = List.of(t.name(), Integer.toString(c.size()), c.mode().label(), Integer.toString(c.ringBytes()));
                consumer = ChildProcess.start("consumer", childArgs("consumer", common, o.pin && cpus > 1 ? 1 : -1, setup));
                producer = ChildProcess.start("producer", childArgs("producer", common, o.pin && cpus > 1 ? 0 : -1, setup));
                consumer.expect("READY", 60_000);
                producer.expect("READY", 60_000);
                Live l = new Live(who, setup, consumer, producer);
                long n = 20_000;
                double rate = 0;
                long warmEnd = System.nanoTime() + (long) (o.warmupSeconds * 1e9);
                int warmRuns = 0;
                while (warmRuns < 2 || System.nanoTime() < warmEnd) {
                    Run r = oneRun(consumer, producer, n, 60_000);
                    l.errors += r.errors;
                    rate = r.mps * 1e6;
                    n = Math.max(10_000, Math.min((long) (rate * Math.min(o.runSeconds, 0.25)), 50_000_000));
                    warmRuns++;
                }
                l.n = Math.max(10_000, Math.min((long) (rate * o.runSeconds), 500_000_000));
                return l;
            } catch (Exception e) {
                if (producer != null) producer.close();
                if (consumer != null) consumer.close();
                setup.close();
                throw e;
            }
        }

        private static List<String> childArgs(String role, List<String> common, int cpu, Transport.Setup setup) {
            List<String> a = new ArrayList<>(List.of("--child", role));
            a.addAll(common);
            a.add(Integer.toString(cpu));
            a.addAll(setup.childArgs());
            return a;
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
