package dev.jvbus.bench;

import dev.jvbus.bench.RingBench.Result;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;

/** The table, the ratio lines (with issue 3's targets for our rings) and the CSV. */
final class Report {
    private Report() {}

    static void table(PrintStream out, List<Result> rs) {
        out.println();
        out.printf(Locale.ROOT, "%-9s %6s %-9s %-5s %10s %9s %9s %5s %11s %6s %7s %5s%n",
                "transport", "size", "mode", "load", "M msg/s", "min", "max", "runs", "msgs/run", "errors", "others%", "redo");
        for (Result r : rs) {
            if (r.failure() != null) {
                out.printf(Locale.ROOT, "%-9s %6d %-9s %-5s FAILED: %s%n", r.transport(), r.size(), r.mode().label(), r.load(), r.failure());
                continue;
            }
            out.printf(Locale.ROOT, "%-9s %6d %-9s %-5s %10.2f %9.2f %9.2f %5d %11d %6d %7.0f %5d%n",
                    r.transport(), r.size(), r.mode().label(), r.load(), r.median(), r.min(), r.max(),
                    r.mps().length, r.messagesPerRun(), r.errors(), r.othersPercent(), r.rejected());
        }
    }

    private static Optional<Result> find(List<Result> rs, String transport, WaitMode mode, int size, String load) {
        return rs.stream().filter(r -> r.failure() == null && r.transport().equals(transport) && r.mode() == mode
                && r.size() == size && r.load().equals(load)).findFirst();
    }

    private static String verdict(double ratio, double target) {
        return ratio >= target ? "ok" : "MISS";
    }

    /** Our figure against a baseline of the same size and load: the median of the per-round ratios and its spread. */
    private static Stats.Ratio ratio(Result ours, Result base) {
        return Stats.Ratio.of(ours.rounds(), base.rounds());
    }

    static void ratios(PrintStream out, List<Result> rs) {
        out.println();
        out.println("per-round ratios (same size and load; contenders alternate round by round): median [min, IQR, max; rounds, settled within 5% after]");
        List<String> loads = rs.stream().map(Result::load).distinct().toList();
        List<Integer> sizes = rs.stream().map(Result::size).distinct().toList();
        for (String load : loads) {
            for (int size : sizes) {
                Optional<Result> pipe = find(rs, "pipe", WaitMode.BLOCK, size, load);
                Optional<Result> pipeNio = find(rs, "pipe-nio", WaitMode.BLOCK, size, load);
                Optional<Result> agrona = find(rs, "agrona", WaitMode.SPIN, size, load);
                Optional<Result> backoff = find(rs, "agrona", WaitMode.BACKOFF, size, load);
                for (Result r : rs) {
                    if (r.failure() != null || r.size() != size || !r.load().equals(load)) continue;
                    String head = String.format(Locale.ROOT, "  %5dB load=%-4s %-16s", size, load, r.key());
                    if (pipe.isPresent() && r != pipe.get()) {
                        line(out, head, "/pipe", ratio(r, pipe.get()), !r.baseline() && size == 16 ? 7 : 0);
                    }
                    if (pipeNio.isPresent() && r != pipeNio.get() && !r.transport().startsWith("pipe")) {
                        line(out, head, "/pipe-nio", ratio(r, pipeNio.get()), !r.baseline() && size == 16 ? 7 : 0);
                    }
                    if (agrona.isPresent() && r != agrona.get()) {
                        line(out, head, "/agrona-spin", ratio(r, agrona.get()), r.baseline() ? 0 : 0.7);
                    }
                    if (backoff.isPresent() && r != backoff.get()) {
                        line(out, head, "/agrona-backoff", ratio(r, backoff.get()), 0);
                    }
                }
            }
        }
        out.println();
        out.println("waiting modes: non-spin mode / spin mode of the same transport, per round (our rings' target under burn: adaptive >= 0.5x spin):");
        for (Result r : rs) {
            if (r.failure() != null || r.mode() == WaitMode.SPIN || r.mode() == WaitMode.BLOCK) continue;
            find(rs, r.transport(), WaitMode.SPIN, r.size(), r.load()).ifPresent(spin -> {
                double target = !r.baseline() && r.load().equals("burn") && r.mode() == WaitMode.ADAPTIVE ? 0.5 : 0;
                line(out, String.format(Locale.ROOT, "  %5dB load=%-4s %-7s", r.size(), r.load(), r.transport()),
                        r.mode().label() + "/spin", ratio(r, spin), target);
            });
        }
        out.println();
        out.println("effect of the burner: load=burn / load=none, same transport, size and mode (ratio of medians: the two loads ran minutes apart):");
        for (Result r : rs) {
            if (r.failure() != null || !r.load().equals("burn")) continue;
            find(rs, r.transport(), r.mode(), r.size(), "none").ifPresent(base ->
                    out.printf(Locale.ROOT, "  %5dB %-16s %6.2fx%n", r.size(), r.key(), r.median() / base.median()));
        }
    }

    private static void line(PrintStream out, String head, String against, Stats.Ratio x, double target) {
        if (x == null) return;
        String verdict = target > 0 ? " (target >= " + target + ": " + verdict(x.median(), target) + ")" : "";
        out.printf(Locale.ROOT, "%s %-16s %s%s%n", head, against, x, verdict);
    }

    static String csv(List<Result> rs) {
        StringBuilder sb = new StringBuilder("transport,baseline,size,mode,load,median_mmsgs,min_mmsgs,max_mmsgs,runs,msgs_per_run,errors,others_cpu_pct,runs_redone,round_mmsgs,failure\n");
        for (Result r : rs) {
            String runs = java.util.Arrays.stream(r.rounds()).mapToObj(v -> Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.4f", v))
                    .collect(Collectors.joining(";"));
            sb.append(String.format(Locale.ROOT, "%s,%b,%d,%s,%s,%.4f,%.4f,%.4f,%d,%d,%d,%.1f,%d,%s,%s%n",
                    r.transport(), r.baseline(), r.size(), r.mode().label(), r.load(), r.median(), r.min(), r.max(),
                    r.mps().length, r.messagesPerRun(), r.errors(), r.othersPercent(), r.rejected(), runs,
                    r.failure() == null ? "" : '"' + r.failure().replace('"', '\'') + '"'));
        }
        return sb.toString();
    }
}
