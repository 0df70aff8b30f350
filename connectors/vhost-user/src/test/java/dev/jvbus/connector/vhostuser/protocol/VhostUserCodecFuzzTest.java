package dev.jvbus.connector.vhostuser.protocol;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the vhost-user codec as the session feeds it, over a real socketpair with
 * real memfds and eventfds (Jazzer). Replays {@code VhostUserCodecFuzzTestInputs/<method>/} under
 * {@code ./jvbus test}; {@code ./jvbus fuzz vhost-user} fuzzes for real. See {@link VhostUserCodecTarget}.
 */
class VhostUserCodecFuzzTest {
    @FuzzTest
    void anyFrontEndStreamIsDecodedOrRefused(byte[] input) throws Exception {
        VhostUserCodecTarget.run(input);
    }
}
