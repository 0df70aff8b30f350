package dev.jvbus.core.ring.virtio;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the split ring, both sides (Jazzer). Under {@code ./jvbus test} each method
 * replays its corpus ({@code SplitRingFuzzTestInputs/<method>/} in the test resources: seeds, and every
 * finding once fixed); {@code ./jvbus fuzz split-device|split-driver} fuzzes for real. The targets and
 * their properties are described on {@link SplitRingDeviceTarget} and {@link SplitRingDriverTarget}.
 */
class SplitRingFuzzTest {
    @FuzzTest
    void deviceSurvivesAHostileDriver(byte[] input) throws Exception {
        SplitRingDeviceTarget.run(input);
    }

    @FuzzTest
    void driverSurvivesAHostileDevice(byte[] input) throws Exception {
        SplitRingDriverTarget.run(input);
    }
}
