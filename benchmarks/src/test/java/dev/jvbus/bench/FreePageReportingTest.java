package dev.jvbus.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class FreePageReportingTest {
    /** As this machine's kernel prints them: the balloon's queues among other devices' on two CPUs. */
    static final List<String> INTERRUPTS = List.of(
            "            CPU0       CPU1       ",
            " 31:          0        347 PCI-MSIX-0000:00:01.0   3-edge      virtio0-stats",
            " 32:        384         17 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq",
            " 36:          0     125780 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0",
            "NMI:          0          0   Non-maskable interrupts");

    @Test
    void sumsTheReportingQueuesCountsOverTheCpusAndNothingElse() {
        assertThat(FreePageReporting.count(INTERRUPTS)).isEqualTo(384 + 17);
    }

    @Test
    void aMachineWithoutReportingHasNoCount() {
        assertThat(FreePageReporting.count(List.of(INTERRUPTS.get(0), INTERRUPTS.get(1), INTERRUPTS.get(3)))).isEqualTo(-1);
    }

    @Test
    void aReportingQueueThatNeverFiredCountsZero() {
        assertThat(FreePageReporting.count(List.of(" 32:          0          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq"))).isZero();
    }
}
