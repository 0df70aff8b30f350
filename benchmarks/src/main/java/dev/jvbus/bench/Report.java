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

    static void ratios(PrintStream out, List<Result> rs) {
        out.println();
        out.println("ratios of medians (same size, same load):");
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
                    StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  %5dB load=%-4s %-16s", size, load, r.key()));
                    boolean any = false;
                    if (pipe.isPresent() && r != pipe.get()) {
                        double x = r.median() / pipe.get().median();
                        line.append(String.format(Locale.ROOT, "  /pipe %6.2fx", x));
                        if (!r.baseline() && size == 16) line.append(" (target >= 7: ").append(verdict(x, 7)).append(')');
                        any = true;
                    }
                    if (pipeNio.isPresent() && r != pipeNio.get() && !r.transport().startsWith("pipe")) {
                        double x = r.median() / pipeNio.get().median();
                        line.append(String.format(Locale.ROOT, "  /pipe-nio %6.2fx", x));
                        if (!r.baseline() && size == 16) line.append(" (target >= 7: ").append(verdict(x, 7)).append(')');
                        any = true;
                    }
                    if (agrona.isPresent() && r != agrona.get()) {
                        double x = r.median() / agrona.get().median();
                        line.append(String.format(Locale.ROOT, "  /agrona-spin %5.2fx", x));
                        if (!r.baseline()) line.append(" (target >= 0.7: ").append(verdict(x, 0.7)).append(')');
                        any = true;
                    }
                    if (backoff.isPresent() && r != backoff.get()) {
                        line.append(String.format(Locale.ROOT, "  /agrona-backoff %5.2fx", r.median() / backoff.get().median()));
                        any = true;
                    }
                    if (any) out.println(line);
                }
            }
        }
        out.println();
        out.println("waiting modes: non-spin mode / spin mode of the same transport (our rings' target under burn: adaptive >= 0.5x spin):");
        for (Result r : rs) {
            if (r.failure() != null || r.mode() == WaitMode.SPIN || r.mode() == WaitMode.BLOCK) continue;
            find(rs, r.transport(), WaitMode.SPIN, r.size(), r.load()).ifPresent(spin -> {
                double x = r.median() / spin.median();
                String target = !r.baseline() && r.load().equals("burn") && r.mode() == WaitMode.ADAPTIVE
                        ? " (target >= 0.5: " + verdict(x, 0.5) + ")" : "";
                out.printf(Locale.ROOT, "  %5dB load=%-4s %-7s %s/spin %6.2fx%s%n", r.size(), r.load(), r.transport(), r.mode().label(), x, target);
            });
        }
        out.println();
        out.println("effect of the burner: load=burn / load=none, same transport, size and mode:");
        for (Result r : rs) {
            if (r.failure() != null || !r.load().equals("burn")) continue;
            find(rs, r.transport(), r.mode(), r.size(), "none").ifPresent(base ->
                    out.printf(Locale.ROOT, "  %5dB %-16s %6.2fx%n", r.size(), r.key(), r.median() / base.median()));
        }
    }

    static String csv(List<Result> rs) {
        StringBuilder sb = new StringBuilder("transport,baseline,size,mode,load,median_mmsgs,min_mmsgs,max_mmsgs,runs,msgs_per_run,errors,others_cpu_pct,runs_redone,run_mmsgs,failure\n");
        for (Result r : rs) {
            String runs = java.util.Arrays.stream(r.mps()).mapToObj(v -> String.format(Locale.ROOT, "%.4f", v))
                    .collect(Collectors.joining(";"));
            sb.append(String.format(Locale.ROOT, "%s,%b,%d,%s,%s,%.4f,%.4f,%.4f,%d,%d,%d,%.1f,%d,%s,%s%n",
                    r.transport(), r.baseline(), r.size(), r.mode().label(), r.load(), r.median(), r.min(), r.max(),
                    r.mps().length, r.messagesPerRun(), r.errors(), r.othersPercent(), r.rejected(), runs,
                    r.failure() == null ? "" : '"' + r.failure().replace('"', '\'') + '"'));
        }
        return sb.toString();
    }
}
