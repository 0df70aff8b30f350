package dev.jvbus.bench;

import java.util.Arrays;
import java.util.Locale;

/** Order statistics for the benchmarks' rounds, and the per-round ratio summary they all report. */
final class Stats {
    private Stats() {}

    /** Linear-interpolated quantile q in [0, 1] of unsorted values (NaN when there are none). */
    static double quantile(double[] values, double q) {
        if (values.length == 0) return Double.NaN;
        double[] s = values.clone();
        Arrays.sort(s);
        double pos = q * (s.length - 1);
        int lo = (int) Math.floor(pos), hi = (int) Math.ceil(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo);
    }

    static double median(double[] values) { return quantile(values, 0.5); }

    /**
     * What a contender's rate is worth against a baseline measured in the same rounds: the median of
     * the per-round ratios with its spread, and after how many rounds that median settled.
     *
     * @param stableAfter the smallest k such that the running median of rounds 1..j stays within
     *                    {@link #STABLE} of the final median for every j >= k (the rounds a stable
     *                    ratio needed on this run); equal to {@code rounds} when it only settled at the end
     */
    record Ratio(double median, double min, double q1, double q3, double max, int rounds, int stableAfter) {
        /** Tolerance of "settled": within 5 % of the final median. */
        static final double STABLE = 0.05;

        /** Pairs round i of {@code ours} with round i of {@code base}; rounds missing in either (NaN) are skipped. */
        static Ratio of(double[] ours, double[] base) {
            int n = Math.min(ours.length, base.length);
            double[] r = new double[n];
            int k = 0;
            for (int i = 0; i < n; i++) {
                if (!Double.isNaN(ours[i]) && !Double.isNaN(base[i]) && base[i] > 0) r[k++] = ours[i] / base[i];
            }
            r = Arrays.copyOf(r, k);
            if (k == 0) return null;
            double med = Stats.median(r);
            int stable = k;
            for (int j = k; j >= 1; j--) {
                double running = Stats.median(Arrays.copyOf(r, j));
                if (Math.abs(running / med - 1) > STABLE) break;
                stable = j;
            }
            return new Ratio(med, quantile(r, 0), quantile(r, 0.25), quantile(r, 0.75), quantile(r, 1), k, stable);
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%5.2fx [min %.2f, IQR %.2f-%.2f, max %.2f; %d rounds, settled after %d]",
                    median, min, q1, q3, max, rounds, stableAfter);
        }
    }
}
