package dev.jvbus.connector.vhostuser.hostile;

import java.util.ArrayList;
import java.util.List;

/**
 * The well-behaved pair's rate per phase (frames A put into the switch, over the phase's wall time),
 * and its ratio to the baseline window measured before any attack. Printed, never asserted: tests do
 * not assert wall-clock speed; the harness asserts that the stream advances and that nothing is lost.
 */
final class RateTable {
    private record Row(String phase, long frames, double seconds, String note) {
        double rate() { return seconds > 0 ? frames / seconds : 0; }
    }

    private final List<Row> rows = new ArrayList<>();
    private double baseline = Double.NaN;

    /** A window without attack; the first one is the baseline. */
    synchronized void alone(String phase, long frames, long nanos) {
        Row r = new Row(phase, frames, nanos / 1e9, "");
        if (Double.isNaN(baseline)) baseline = r.rate();
        rows.add(r);
    }

    synchronized void window(String phase, long frames, long nanos, String note) {
        rows.add(new Row(phase, frames, nanos / 1e9, note));
    }

    synchronized void skipped(String phase, String why) {
        rows.add(new Row(phase, -1, 0, why));
    }

    synchronized String render() {
        StringBuilder sb = new StringBuilder();
        int w = Math.max(10, rows.stream().mapToInt(r -> r.phase().length()).max().orElse(10));
        w = Math.min(w, 96);
        sb.append(String.format("%-" + w + "s %10s %8s %12s %8s%n", "phase", "frames", "seconds", "frames/s", "ratio"));
        for (Row r : rows) {
            String phase = r.phase().length() > w ? r.phase().substring(0, w - 1) + "…" : r.phase();
            if (r.frames() < 0) {
                sb.append(String.format("%-" + w + "s %10s %8s %12s %8s  %s%n", phase, "-", "-", "-", "-", r.note()));
            } else {
                sb.append(String.format("%-" + w + "s %10d %8.2f %12.0f %8.2f%s%n", phase, r.frames(), r.seconds(), r.rate(),
                        r.rate() / baseline, r.note().isEmpty() ? "" : "  " + r.note()));
            }
        }
        return sb.toString();
    }
}
