package dev.jvbus.connector.shm.server;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of a whole shm session of a real container (Jazzer). Replays
 * {@code ShmSessionFuzzTestInputs/<method>/} under {@code ./jvbus test}; {@code ./jvbus fuzz shm-session}
 * fuzzes for real. See {@link ShmSessionTarget}.
 */
class ShmSessionFuzzTest {
    @FuzzTest
    void anyMessageSequenceIsAnsweredOrRefusedAndLeavesTheDevicesFreeAndTheFdsClosed(byte[] input) throws Exception {
        ShmSessionTarget.run(input);
    }
}
