package dev.jvbus.core.ring.ioq;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the vbus IOQ ring, device and driver over one ring whose memory the input
 * also writes as a hostile peer (Jazzer). Replays {@code IoqRingFuzzTestInputs/<method>/} under
 * {@code ./jvbus test}; {@code ./jvbus fuzz ioq} fuzzes for real. See {@link IoqRingTarget}.
 */
class IoqRingFuzzTest {
    @FuzzTest
    void bothSidesSurviveAHostilePeer(byte[] input) throws Exception {
        IoqRingTarget.run(input);
    }
}
