package dev.jvbus.model.virtionet;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of virtio-net's transmit path under hostile virtio_net_hdrs (Jazzer). Replays
 * {@code NetTxFuzzTestInputs/<method>/} under {@code ./jvbus test}; {@code ./jvbus fuzz net-tx} fuzzes for
 * real. See {@link NetTxTarget}.
 */
class NetTxFuzzTest {
    @FuzzTest
    void everyTxBufferIsSentDroppedAndCountedOrResetsTheDeviceByTheRules(byte[] input) throws Exception {
        NetTxTarget.run(input);
    }
}
