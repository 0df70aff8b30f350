package dev.jvbus.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Per-thread host CPU of a process over a window, from {@code /proc/<pid>/task/<tid>/sched} (run time in ns,
 * voluntary and involuntary context switches, migrations between CPUs) read at the start and the end, plus
 * where the threads ran: a sampler reads each busy thread's state and last CPU ({@code /proc/.../stat}) every few
 * ms, so a report can say how often a thread was runnable on the CPU the guest's vCPU thread was on (both
 * competing for one core) while the other core may have been free.
 *
 * <p>Why: under TCG the guest is CPU-bound and its throughput follows the host CPU its vCPU thread gets; the
 * question for a back-end is which of its threads take CPU, how often they sleep and wake (a voluntary switch is a
 * sleep, so one per wake-up), and whether they land on the vCPU's core. Threads are named by their {@code comm}
 * (QEMU names its threads with {@code -name debug-threads=on}; the JVM gives each thread its Java name, cut to
 * 15 characters).
 */
final class ThreadCpu {
    /** One thread's counters at one read. */
    record Sample(String name, long runNanos, long voluntary, long involuntary, long migrations) { }

    /** One thread's growth over the window, and what the placement sampler saw of it. */
    record Use(long tid, String name, long runNanos, long voluntary, long involuntary, long migrations,
               int samplesRunnable, int samplesBesideVcpu) {
        double pct(long wallNanos) { return 100.0 * runNanos / wallNanos; }
    }

    private final long pid;
    private final Map<Long, Sample> start;

    private ThreadCpu(long pid) {
        this.pid = pid;
        this.start = read(pid);
    }

    static ThreadCpu start(long pid) { return new ThreadCpu(pid); }

    /** Every thread's growth since {@link #start}, the busiest first. */
    List<Use> end(Placement placement) {
        Map<Long, Sample> now = read(pid);
        List<Use> out = new ArrayList<>();
        for (var e : now.entrySet()) {
            Sample b = start.get(e.getKey()), a = e.getValue();
            long run = a.runNanos() - (b == null ? 0 : b.runNanos());
            int[] seen = placement == null ? new int[2] : placement.seen(e.getKey());
            out.add(new Use(e.getKey(), a.name(), run, a.voluntary() - (b == null ? 0 : b.voluntary()),
                    a.involuntary() - (b == null ? 0 : b.involuntary()), a.migrations() - (b == null ? 0 : b.migrations()),
                    seen[0], seen[1]));
        }
        out.sort((x, y) -> Long.compare(y.runNanos(), x.runNanos()));
        return out;
    }

    /** All threads of {@code pid} now, by thread id (threads that end between listing and reading are left out). */
    static Map<Long, Sample> read(long pid) {
        Map<Long, Sample> out = new HashMap<>();
        try (var tasks = Files.list(Path.of("/proc", String.valueOf(pid), "task"))) {
            for (Path t : tasks.toList()) {
                try {
                    out.put(Long.parseLong(t.getFileName().toString()), parseSched(Files.readString(t.resolve("comm")).strip(),
                            Files.readString(t.resolve("sched"))));
                } catch (IOException | RuntimeException e) {
                    // the thread ended between the listing and the read
                }
            }
        } catch (IOException e) {
            // the process is gone
        }
        return out;
    }

    static Sample parseSched(String name, String sched) {
        double runMs = 0;
        long vol = 0, invol = 0, mig = 0;
        for (String line : sched.split("\n")) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String key = line.substring(0, colon).strip(), value = line.substring(colon + 1).strip();
            switch (key) {
                case "se.sum_exec_runtime" -> runMs = Double.parseDouble(value);
                case "nr_voluntary_switches" -> vol = Long.parseLong(value);
                case "nr_involuntary_switches" -> invol = Long.parseLong(value);
                case "se.nr_migrations" -> mig = Long.parseLong(value);
                default -> { }
            }
        }
        return new Sample(name, Math.round(runMs * 1e6), vol, invol, mig);
    }

    /**
     * One line per thread that took at least {@code minPct} of a core: name, CPU %, wake-ups (voluntary switches)
     * per MB moved, preemptions, migrations, and the share of placement samples in which it was runnable on the
     * vCPU's CPU.
     */
    static String describe(String who, List<Use> uses, long wallNanos, long bytes, double minPct) {
        StringBuilder s = new StringBuilder();
        for (Use u : uses) {
            if (u.pct(wallNanos) < minPct) continue;
            s.append(String.format(Locale.ROOT, "%n      %-5s %-16s %5.1f%%  wake-ups %7d (%6.1f per MB)  preempted %6d  migrated %5d",
                    who, u.name(), u.pct(wallNanos), u.voluntary(), bytes == 0 ? Double.NaN : u.voluntary() * 1e6 / bytes,
                    u.involuntary(), u.migrations()));
            if (u.samplesRunnable() > 0)
                s.append(String.format(Locale.ROOT, "  runnable in %d samples, %d%% of them on the vCPU's CPU",
                        u.samplesRunnable(), Math.round(100.0 * u.samplesBesideVcpu() / u.samplesRunnable())));
        }
        return s.toString();
    }

    /**
     * Samples, every {@code periodMillis}, each watched thread's state and last CPU ({@code /proc/<pid>/task/<tid>/stat}
     * fields 3 and 39) and counts, per thread, the samples in which it was runnable (R) and those in which it was
     * runnable on the CPU the vCPU thread last ran on. A few small reads per sample; the sampler runs on this JVM's
     * main thread's behalf, so its own cost is in "this JVM" for the ours side and outside both for qemu-tap (it
     * samples on both sides alike).
     */
    static final class Placement implements AutoCloseable {
        private final Map<Long, Path> watched = new LinkedHashMap<>();
        private final Path vcpu;
        private final Map<Long, int[]> seen = new java.util.concurrent.ConcurrentHashMap<>();
        private final Thread thread;
        private volatile boolean stop;

        Placement(long vcpuPid, long vcpuTid, Map<Long, Long> tidToPid, int periodMillis) {
            this.vcpu = Path.of("/proc", String.valueOf(vcpuPid), "task", String.valueOf(vcpuTid), "stat");
            tidToPid.forEach((tid, pid) -> watched.put(tid, Path.of("/proc", String.valueOf(pid), "task", String.valueOf(tid), "stat")));
            this.thread = Thread.ofPlatform().daemon().name("bench-placement").start(() -> {
                while (!stop) {
                    int vcpuCpu = cpuOf(vcpu)[1];
                    for (var e : watched.entrySet()) {
                        int[] st = cpuOf(e.getValue());
                        if (st[0] != 'R') continue;
                        int[] c = seen.computeIfAbsent(e.getKey(), k -> new int[2]);
                        c[0]++;
                        if (st[1] == vcpuCpu) c[1]++;
                    }
                    try {
                        Thread.sleep(periodMillis);   // a sampling period, not a wait for a condition
                    } catch (InterruptedException ex) {
                        return;
                    }
                }
            });
        }

        /** {state char, last cpu}, or {0, -1} if the thread is gone. */
        private static int[] cpuOf(Path stat) {
            try {
                String s = Files.readString(stat);
                String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
                return new int[] {f[0].charAt(0), Integer.parseInt(f[36])};
            } catch (IOException | RuntimeException e) {
                return new int[] {0, -1};
            }
        }

        int[] seen(long tid) {
            return seen.getOrDefault(tid, new int[2]);
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(1000);
        }
    }
}
