package dev.jvbus.connector.vhostuser;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of a whole vhost-user session of a real device (Jazzer). Replays
 * {@code VhostUserSessionFuzzTestInputs/<method>/} under {@code ./jvbus test}; {@code ./jvbus fuzz vhost-user-session}
 * fuzzes for real. See {@link VhostUserSessionTarget}.
 */
class VhostUserSessionFuzzTest {
    @FuzzTest
    void anyMessageSequenceIsServedOrRefusedAndLeavesTheDeviceFreeAndTheFdsClosed(byte[] input) throws Exception {
        VhostUserSessionTarget.run(input);
    }
}
