package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * EvictChoice keeps a level of eviction only where the queue ran measurably faster with it than with a cheaper one,
 * climbs towards the frame lines when a level paid, looks down again from a level that held, reaches a level past a
 * neighbour that does not pay, alternates fairly while it measures, keeps it off under a light load, measures again
 * after its hold, and never where the operator fixed the level.
 */
class EvictChoiceTest {
    /**
     * A queue whose buffers arrive at a steady rate at each level: a batch of {@code batch} frames every so many ns
     * with the descriptor lines evicted ({@code on}), with none ({@code off}), with half the frame lines too, and with
     * all of them.
     */
    private record Load(long nsPerBatchOn, long nsPerBatchOff, int batch, long nsPerBatchHalf, long nsPerBatchFrames) {
        Load(long nsPerBatchOn, long nsPerBatchOff, int batch) {
            this(nsPerBatchOn, nsPerBatchOff, batch, nsPerBatchOn + 150, nsPerBatchOn + 300);   // the frame lines cost: not taken
        }

        long nsPerBatch(EvictedLines level) {
            return switch (level) {
                case NONE -> nsPerBatchOff;
                case DESCRIPTORS -> nsPerBatchOn;
                case HALF_FRAMES -> nsPerBatchHalf;
                case FRAMES -> nsPerBatchFrames;
            };
        }
    }

    private long now = 1_000_000_000L, frames;

    /** Runs batches at {@code load}'s rates until the probe chooses. */
    private void probe(EvictChoice c, Load load) {
        for (int i = 0; c.timing(); i++) {
            assertThat(i).as("a probe ends").isLessThan(1_000_000);
            c.at(now, frames);
            now += load.nsPerBatch(c.level());
            frames += load.batch();
        }
    }

    @Test
    void keepsEvictionWhenTheQueueRunsFasterWithIt() {
        EvictChoice c = new EvictChoice();
        assertThat(c.level()).as("a probe starts with eviction").isEqualTo(EvictedLines.DESCRIPTORS);
        probe(c, new Load(3_000, 3_100, 48));   // 3 % faster with it
        assertThat(c.timing()).isFalse();
        assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
        assertThat(c.timesChosen(EvictedLines.DESCRIPTORS)).isEqualTo(1);
        assertThat(c.probesDone()).isEqualTo(1);
    }

    @Test
    void dropsEvictionThatBuysLessThanItsMarginThenProbesAgainAfterTheHold() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(3_000, 3_010, 48));   // 0.3 % faster with it: not worth its flushes
        assertThat(c.level()).isEqualTo(EvictedLines.NONE);
        assertThat(c.timesChosen(EvictedLines.NONE)).isEqualTo(1);
        for (int i = 0; i < EvictChoice.HOLD_BATCHES - 1; i++) {
            c.heldBatch();
            assertThat(c.timing()).isFalse();
            assertThat(c.level()).isEqualTo(EvictedLines.NONE);
        }
        c.heldBatch();
        assertThat(c.timing()).as("measured again after the hold").isTrue();
        assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
        probe(c, new Load(3_000, 4_000, 48));   // the host moved the cores apart: now it pays
        assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
        assertThat(c.probesDone()).isEqualTo(2);
    }

    @Test
    void slowerWithEvictionIsOff() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(3_500, 3_000, 48));   // our worker is the limit, and the flushes cost it
        assertThat(c.level()).isEqualTo(EvictedLines.NONE);
    }

    @Test
    void aLightLoadKeepsItOffHoweverTheRatesCompare() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(100_000, 200_000, 1));   // "twice as fast", on a handful of frames a window
        assertThat(c.level()).isEqualTo(EvictedLines.NONE);
    }

    @Test
    void anIdleSpellIsNoWindow() {
        EvictChoice c = new EvictChoice();
        c.at(now, frames);                      // the worker's first batch finds nothing
        now += 50 * EvictChoice.WINDOW_NS;      // then the queue is idle for a long time
        c.at(now, frames);
        assertThat(c.level()).as("the first window, restarted: still the first").isEqualTo(EvictedLines.DESCRIPTORS);
        probe(c, new Load(3_000, 3_100, 48));
        assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
        assertThat(c.probesDone()).isEqualTo(1);
    }

    @Test
    void theWindowsGoOnOffOffOnAndEachLastsAtLeastItsLength() {
        EvictChoice c = new EvictChoice();
        List<EvictedLines> modes = windows(c);
        // consecutive windows of one level merge in this record: on, off, on, off, on (of lengths 1, 2, 2, 2, 1)
        assertThat(modes).containsExactly(EvictedLines.DESCRIPTORS, EvictedLines.NONE, EvictedLines.DESCRIPTORS, EvictedLines.NONE, EvictedLines.DESCRIPTORS);
        assertThat(starts.get(1) - starts.get(0)).isGreaterThanOrEqualTo(EvictChoice.WINDOW_NS);
        for (int k = 2; k < starts.size(); k++)
            assertThat(starts.get(k) - starts.get(k - 1)).isGreaterThanOrEqualTo(2 * EvictChoice.WINDOW_NS);
        assertThat(now - starts.get(0)).isGreaterThanOrEqualTo(2L * EvictChoice.PROBES * EvictChoice.WINDOW_NS);
    }

    @Test
    void climbsToTheFrameLinesWhereTheyPayAndComesDownWhenTheyStop() {
        EvictChoice c = new EvictChoice();
        Load framesPay = new Load(3_000, 3_100, 48, 2_700, 2_300);   // the slow state of session 31: the frame lines 1.3x
        probe(c, framesPay);
        assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
        hold(c);
        assertThat(probed(c, framesPay, EvictedLines.HALF_FRAMES, EvictedLines.DESCRIPTORS))
                .as("the next probe: half the frame lines against the descriptor lines")
                .isEqualTo(EvictedLines.HALF_FRAMES);
        hold(c);
        assertThat(probed(c, framesPay, EvictedLines.FRAMES, EvictedLines.HALF_FRAMES))
                .as("climbed: the next one up").isEqualTo(EvictedLines.FRAMES);
        assertThat(c.timesChosen(EvictedLines.FRAMES)).isEqualTo(1);
        hold(c);
        assertThat(c.level()).as("at the top, it checks the one below").isEqualTo(EvictedLines.FRAMES);
        Load framesCost = new Load(3_000, 3_100, 48, 3_200, 3_400);   // the host moved the cores: now they cost
        probe(c, framesCost);
        assertThat(c.level()).isEqualTo(EvictedLines.HALF_FRAMES);
        hold(c);
        assertThat(probed(c, framesCost, EvictedLines.HALF_FRAMES, EvictedLines.DESCRIPTORS))
                .as("come down: the next one down").isEqualTo(EvictedLines.DESCRIPTORS);
        hold(c);
        assertThat(probed(c, framesCost, EvictedLines.DESCRIPTORS, EvictedLines.NONE))
                .as("and on down").isEqualTo(EvictedLines.DESCRIPTORS);
        assertThat(c.probesDone()).isEqualTo(6);
    }

    @Test
    void aLevelPastANeighbourThatDoesNotPayIsReached() {
        EvictChoice c = new EvictChoice();
        // session 32's slow state: half the frame lines under 1 % faster than the descriptor lines, all of them 1.3x
        Load slow = new Load(3_000, 3_100, 48, 2_990, 2_300);
        List<EvictedLines> highs = new ArrayList<>();
        for (;;) {
            assertThat(highs).as("reached within a round of the other levels").hasSizeLessThan(5);
            highs.add(c.level());
            probe(c, slow);
            if (c.level() == EvictedLines.FRAMES) break;
            hold(c);
        }
        assertThat(highs).as("the probes' costlier levels: each other level in turn, nearest first")
                .containsExactly(EvictedLines.DESCRIPTORS, EvictedLines.HALF_FRAMES, EvictedLines.DESCRIPTORS, EvictedLines.FRAMES);
    }

    @Test
    void aLevelSettledAmongOthersChecksEachInTurnLessOftenAsItHolds() {
        EvictChoice c = new EvictChoice();
        Load middle = new Load(3_000, 3_100, 48, 3_150, 3_400);   // the descriptor lines pay, the frame lines do not
        List<EvictedLines> highs = new ArrayList<>();
        List<Integer> holds = new ArrayList<>();
        for (int p = 0; p < 6; p++) {
            highs.add(c.level());                                 // a probe starts at the costlier of its two levels
            probe(c, middle);
            assertThat(c.level()).isEqualTo(EvictedLines.DESCRIPTORS);
            holds.add(hold(c) / EvictChoice.HOLD_BATCHES);
        }
        // against none first, then half the frame lines (up: it climbed to the descriptor lines), none, all frame lines, ...
        assertThat(highs).containsExactly(EvictedLines.DESCRIPTORS, EvictedLines.HALF_FRAMES, EvictedLines.DESCRIPTORS,
                EvictedLines.FRAMES, EvictedLines.HALF_FRAMES, EvictedLines.DESCRIPTORS);
        assertThat(holds).as("each probe that kept the level doubled the hold, up to the longest").containsExactly(1, 2, 4, 8, 8, 8);
        Load framesPay = new Load(3_000, 3_100, 48, 3_150, 2_300);   // then all the frame lines pay
        probe(c, framesPay);                                         // (the probe against all the frame lines)
        assertThat(c.level()).isEqualTo(EvictedLines.FRAMES);
        assertThat(hold(c)).as("a change: the shortest hold again").isEqualTo(EvictChoice.HOLD_BATCHES);
    }

    @Test
    void aLevelTheOperatorFixedIsNeverProbed() {
        EvictChoice c = new EvictChoice(EvictedLines.FRAMES);
        assertThat(c.timing()).isFalse();
        for (int i = 0; i < 3 * EvictChoice.HOLD_BATCHES; i++) c.heldBatch();
        assertThat(c.timing()).isFalse();
        assertThat(c.level()).isEqualTo(EvictedLines.FRAMES);
        assertThat(new EvictChoice(EvictedLines.NONE).level()).isEqualTo(EvictedLines.NONE);
    }

    @Test
    void theParameterNamesEachLevelOrAuto() {
        assertThat(EvictedLines.fixedBy(Map.of())).as("auto, the default").isNull();
        assertThat(EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "auto"))).isNull();
        assertThat(EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "off"))).isEqualTo(EvictedLines.NONE);
        assertThat(EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "descriptors"))).isEqualTo(EvictedLines.DESCRIPTORS);
        assertThat(EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "half-frames"))).isEqualTo(EvictedLines.HALF_FRAMES);
        assertThat(EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "frames"))).isEqualTo(EvictedLines.FRAMES);
        assertThatThrownBy(() -> EvictedLines.fixedBy(Map.of(EvictedLines.PARAM, "always")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'evict'").hasMessageContaining("'always'");
    }

    private final List<Long> starts = new ArrayList<>();

    /** The levels of one probe's windows, consecutive windows of one level merged, at a steady 3 us per batch. */
    private List<EvictedLines> windows(EvictChoice c) {
        return windows(c, new Load(3_000, 3_000, 48, 3_000, 3_000));
    }

    private List<EvictedLines> windows(EvictChoice c, Load load) {
        List<EvictedLines> modes = new ArrayList<>();
        starts.clear();
        EvictedLines last = null;
        while (c.timing()) {
            c.at(now, frames);
            if (c.timing() && c.level() != last) {
                modes.add(c.level());
                starts.add(now);
                last = c.level();
            }
            now += load.nsPerBatch(c.level());
            frames += load.batch();
        }
        return modes;
    }

    /** One probe at {@code load}, whose windows must alternate {@code high}, {@code low}, ... as a probe does: the level it chose. */
    private EvictedLines probed(EvictChoice c, Load load, EvictedLines high, EvictedLines low) {
        assertThat(windows(c, load)).as("the probe's windows").containsExactly(high, low, high, low, high);
        return c.level();
    }

    /** Batches until the next probe starts: the hold's length. */
    private static int hold(EvictChoice c) {
        int n = 0;
        while (!c.timing()) {
            assertThat(n).as("a probe after at most the longest hold").isLessThan(EvictChoice.MAX_HOLD_BATCHES);
            c.heldBatch();
            n++;
        }
        return n;
    }
}
