package dev.jvbus.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How much CPU other people's processes took while a case was measured. The machines are shared,
 * so a figure means little without it: others% = (all busy CPU time from /proc/stat - the CPU time
 * of our own processes: parent, producer, consumer, burner) / (cpus x wall time). /proc/stat ticks
 * are 10 ms, so small values are approximate. Steal time (the hypervisor running someone else on
 * our vCPU) is counted as busy.
 */
final class CpuAccount {
    private final List<ProcessHandle> ours;
    private final long busy0, total0, ours0;

    private CpuAccount(List<ProcessHandle> ours) throws IOException {
        this.ours = ours;
        long[] s = procStat();
        busy0 = s[0];
        total0 = s[1];
        ours0 = oursNanos();
    }

    static CpuAccount start(List<ProcessHandle> ours) throws IOException { return new CpuAccount(ours); }

    /** Percent of the machine's CPU used by processes that are not ours since {@link #start}. */
    double othersPercent() throws IOException {
        long[] s = procStat();
        double busyNs = (s[0] - busy0) * 10e6;
        double totalNs = (s[1] - total0) * 10e6;
        double oursNs = oursNanos() - ours0;
        if (totalNs <= 0) return 0;
        return Math.max(0, (busyNs - oursNs) / totalNs * 100);
    }

    private long oursNanos() {
        long sum = 0;
        for (ProcessHandle p : ours) sum += p.info().totalCpuDuration().map(Duration::toNanos).orElse(0L);
        return sum;
    }

    /** {busy, total} jiffies over all cpus. */
    private static long[] procStat() throws IOException {
        String[] f = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
        long user = Long.parseLong(f[1]), nice = Long.parseLong(f[2]), system = Long.parseLong(f[3]);
        long idle = Long.parseLong(f[4]), iowait = Long.parseLong(f[5]), irq = Long.parseLong(f[6]);
        long softirq = Long.parseLong(f[7]), steal = f.length > 8 ? Long.parseLong(f[8]) : 0;
        long busy = user + nice + system + irq + softirq + steal;
        return new long[] {busy, busy + idle + iowait};
    }
}
