package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongBinaryOperator;
import org.junit.jupiter.api.Test;

/** ReadAheadChoice keeps the faster mode as measured, alternates fairly while it measures, and measures again. */
class ReadAheadChoiceTest {
    private static final int FRAMES = VirtioNetDevice.TX_BATCH;
    private static final int PROBE = 2 * ReadAheadChoice.PROBES * ReadAheadChoice.PROBE_BATCHES;

    /** Runs one probe; {@code cost(on ? 1 : 0, batchIndex)} is the ns of each full batch. Returns the modes used. */
    private static List<Boolean> probe(ReadAheadChoice c, LongBinaryOperator cost) {
        List<Boolean> modes = new ArrayList<>();
        for (int i = 0; i < PROBE; i++) {
            assertThat(c.timing()).as("batch %d of the probe", i).isTrue();
            modes.add(c.on());
            c.fullBatch(cost.applyAsLong(c.on() ? 1 : 0, i), FRAMES);
        }
        return modes;
    }

    @Test
    void keepsTheReadAheadOffWhenThatIsFasterThenProbesAgain() {
        ReadAheadChoice c = new ReadAheadChoice();
        assertThat(c.on()).isTrue();
        List<Boolean> modes = probe(c, (on, i) -> on == 1 ? 5_000 : 4_500);   // off 10 % faster
        assertThat(modes.stream().filter(m -> m).count()).isEqualTo(PROBE / 2);
        assertThat(c.timing()).isFalse();
        assertThat(c.on()).isFalse();
        assertThat(c.offChosen()).isEqualTo(1);
        for (int i = 0; i < ReadAheadChoice.HOLD_BATCHES - 1; i++) {
            c.heldBatch();
            assertThat(c.on()).isFalse();
        }
        c.heldBatch();
        assertThat(c.timing()).as("measured again after the hold").isTrue();
        assertThat(c.on()).isTrue();
        probe(c, (on, i) -> on == 1 ? 4_000 : 4_500);   // now on is faster
        assertThat(c.on()).isTrue();
        assertThat(c.probesDone()).isEqualTo(2);
    }

    @Test
    void theWindowsGoOnOffOffOnSoThatAnEvenDriftFavoursNeither() {
        ReadAheadChoice c = new ReadAheadChoice();
        // Same cost both ways, the machine getting faster all through the probe: on, off, on, off would put every
        // off window after its on window and choose off for nothing.
        List<Boolean> modes = probe(c, (on, i) -> 10_000 - 10L * i);
        int w = ReadAheadChoice.PROBE_BATCHES;
        List<Boolean> windows = new ArrayList<>();
        for (int k = 0; k < modes.size(); k += w) {
            windows.add(modes.get(k));
            assertThat(modes.subList(k, k + w)).as("one mode through window %d", k / w).containsOnly(modes.get(k));
        }
        assertThat(windows).containsExactly(true, false, false, true, true, false, false, true);
        assertThat(c.on()).isTrue();
    }
}
