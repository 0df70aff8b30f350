package dev.jvbus.connector.vhostuser;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the vhost-user memory table and its translations (Jazzer). Replays
 * {@code MemoryTableFuzzTestInputs/<method>/} under {@code ./jvbus test}; {@code ./jvbus fuzz memory-table}
 * fuzzes for real. See {@link MemoryTableTarget}.
 */
class MemoryTableFuzzTest {
    @FuzzTest
    void anyRegionListIsMappedWholeOrRefusedAndTranslatesExactly(byte[] input) throws Exception {
        MemoryTableTarget.run(input);
    }
}
