package dev.jvbus.core.state;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of saved device states: the codec and {@code Container.restoreDevice}
 * (Jazzer). Replays {@code StateRestoreFuzzTestInputs/<method>/} under {@code ./jvbus test};
 * {@code ./jvbus fuzz state} fuzzes for real. See {@link StateRestoreTarget}.
 */
class StateRestoreFuzzTest {
    @FuzzTest
    void aSavedStateFromElsewhereIsRefusedOrRestoredWhole(byte[] input) {
        StateRestoreTarget.run(input);
    }
}
