package dev.jvbus.model.venet;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of venet's device calls and scatter-gather transmit (Jazzer). Replays
 * {@code VenetFuzzTestInputs/<method>/} under {@code ./jvbus test}; {@code ./jvbus fuzz venet} fuzzes for
 * real. See {@link VenetTarget}.
 */
class VenetFuzzTest {
    @FuzzTest
    void devcallsAnswerOrRefuseAndEveryTxBufferMeetsItsFate(byte[] input) throws Exception {
        VenetTarget.run(input);
    }
}
