package dev.jvbus.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

class StatsTest {
    @Test
    void aRatioPairsRoundsByIndexNotByRank() {
        // The load halves both contenders in rounds 3 and 4: per-round ratios are all 2, while the ratio
        // of the two medians (9 / 4.5) would be the same here only by luck of the ordering.
        double[] ours = {20, 20, 10, 10};
        double[] base = {10, 10, 5, 5};
        Stats.Ratio r = Stats.Ratio.of(ours, base);
        assertThat(r.median()).isEqualTo(2.0);
        assertThat(r.min()).isEqualTo(2.0);
        assertThat(r.max()).isEqualTo(2.0);
        assertThat(r.rounds()).isEqualTo(4);
        assertThat(r.stableAfter()).isEqualTo(1);
    }

    @Test
    void roundsThatEitherSideMissedAreLeftOut() {
        Stats.Ratio r = Stats.Ratio.of(new double[] {4, Double.NaN, 6, 8}, new double[] {2, 3, Double.NaN, 4});
        assertThat(r.rounds()).isEqualTo(2);
        assertThat(r.median()).isEqualTo(2.0);
        assertThat(Stats.Ratio.of(new double[] {Double.NaN}, new double[] {1})).isNull();
    }

    @Test
    void theSpreadAndTheRoundsTheMedianNeededToSettle() {
        // Ratios 1.0, 3.0, 1.02, 1.0, 0.98, 1.01, 1.0: the running median jumps to 2.0 after two rounds and
        // is within 5 % of the final 1.0 from round three on.
        double[] base = {1, 1, 1, 1, 1, 1, 1};
        Stats.Ratio r = Stats.Ratio.of(new double[] {1.0, 3.0, 1.02, 1.0, 0.98, 1.01, 1.0}, base);
        assertThat(r.median()).isEqualTo(1.0);
        assertThat(r.min()).isEqualTo(0.98);
        assertThat(r.max()).isEqualTo(3.0);
        assertThat(r.q1()).isCloseTo(1.0, within(1e-9));
        assertThat(r.q3()).isCloseTo(1.015, within(1e-9));
        assertThat(r.stableAfter()).isEqualTo(3);
    }

    @Test
    void quantilesInterpolate() {
        assertThat(Stats.quantile(new double[] {4, 1, 3, 2}, 0.5)).isEqualTo(2.5);
        assertThat(Stats.quantile(new double[] {}, 0.5)).isNaN();
    }
}
