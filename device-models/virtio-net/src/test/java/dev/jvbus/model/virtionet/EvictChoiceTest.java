package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * EvictChoice keeps eviction only where the queue ran measurably faster with it, alternates fairly while it measures,
 * keeps it off under a light load, and measures again after its hold.
 */
class EvictChoiceTest {
    /** A queue whose buffers arrive at a steady rate in each mode: a batch of {@code batch} frames every {@code ns} ns. */
    private record Load(long nsPerBatchOn, long nsPerBatchOff, int batch) {}

    private long now = 1_000_000_000L, frames;

    /** Runs batches at {@code load}'s rates until the probe chooses. */
    private void probe(EvictChoice c, Load load) {
        for (int i = 0; c.timing(); i++) {
            assertThat(i).as("a probe ends").isLessThan(1_000_000);
            c.at(now, frames);
            now += c.on() ? load.nsPerBatchOn() : load.nsPerBatchOff();
            frames += load.batch();
        }
    }

    @Test
    void keepsEvictionWhenTheQueueRunsFasterWithIt() {
        EvictChoice c = new EvictChoice();
        assertThat(c.on()).as("a probe starts with eviction").isTrue();
        probe(c, new Load(3_000, 3_100, 48));   // 3 % faster with it
        assertThat(c.timing()).isFalse();
        assertThat(c.on()).isTrue();
        assertThat(c.onChosen()).isEqualTo(1);
        assertThat(c.probesDone()).isEqualTo(1);
    }

    @Test
    void dropsEvictionThatBuysLessThanItsMarginThenProbesAgainAfterTheHold() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(3_000, 3_010, 48));   // 0.3 % faster with it: not worth its flushes
        assertThat(c.on()).isFalse();
        assertThat(c.onChosen()).isZero();
        for (int i = 0; i < EvictChoice.HOLD_BATCHES - 1; i++) {
            c.heldBatch();
            assertThat(c.timing()).isFalse();
            assertThat(c.on()).isFalse();
        }
        c.heldBatch();
        assertThat(c.timing()).as("measured again after the hold").isTrue();
        assertThat(c.on()).isTrue();
        probe(c, new Load(3_000, 4_000, 48));   // the host moved the cores apart: now it pays
        assertThat(c.on()).isTrue();
        assertThat(c.probesDone()).isEqualTo(2);
    }

    @Test
    void slowerWithEvictionIsOff() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(3_500, 3_000, 48));   // our worker is the limit, and the flushes cost it
        assertThat(c.on()).isFalse();
    }

    @Test
    void aLightLoadKeepsItOffHoweverTheRatesCompare() {
        EvictChoice c = new EvictChoice();
        probe(c, new Load(100_000, 200_000, 1));   // "twice as fast", on a handful of frames a window
        assertThat(c.on()).isFalse();
    }

    @Test
    void anIdleSpellIsNoWindow() {
        EvictChoice c = new EvictChoice();
        c.at(now, frames);                      // the worker's first batch finds nothing
        now += 50 * EvictChoice.WINDOW_NS;      // then the queue is idle for a long time
        c.at(now, frames);
        assertThat(c.on()).as("the first window, restarted: still the first").isTrue();
        probe(c, new Load(3_000, 3_100, 48));
        assertThat(c.on()).isTrue();
        assertThat(c.probesDone()).isEqualTo(1);
    }

    @Test
    void theWindowsGoOnOffOffOnAndEachLastsAtLeastItsLength() {
        EvictChoice c = new EvictChoice();
        List<Boolean> modes = new ArrayList<>();
        List<Long> starts = new ArrayList<>();
        boolean last = !c.on();
        while (c.timing()) {
            c.at(now, frames);
            if (c.timing() && c.on() != last || modes.isEmpty()) {
                modes.add(c.on());
                starts.add(now);
                last = c.on();
            }
            now += 3_000;
            frames += 48;
        }
        // consecutive windows of one mode merge in this record: on, off, on, off, on (of lengths 1, 2, 2, 2, 1)
        assertThat(modes).containsExactly(true, false, true, false, true);
        assertThat(starts.get(1) - starts.get(0)).isGreaterThanOrEqualTo(EvictChoice.WINDOW_NS);
        for (int k = 2; k < starts.size(); k++)
            assertThat(starts.get(k) - starts.get(k - 1)).isGreaterThanOrEqualTo(2 * EvictChoice.WINDOW_NS);
        assertThat(now - starts.get(0)).isGreaterThanOrEqualTo(2L * EvictChoice.PROBES * EvictChoice.WINDOW_NS);
    }
}
