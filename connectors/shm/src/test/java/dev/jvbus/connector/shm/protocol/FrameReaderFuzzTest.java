package dev.jvbus.connector.shm.protocol;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the shm protocol's frame reader and codec over a real socketpair with real
 * fds (Jazzer). Replays {@code FrameReaderFuzzTestInputs/<method>/} under {@code ./jvbus test};
 * {@code ./jvbus fuzz shm-frames} fuzzes for real. See {@link FrameReaderTarget}.
 */
class FrameReaderFuzzTest {
    @FuzzTest
    void anyByteStreamIsReadIntoFramesOrRefused(byte[] input) throws Exception {
        FrameReaderTarget.run(input);
    }
}
