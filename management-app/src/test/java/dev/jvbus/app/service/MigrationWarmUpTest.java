package dev.jvbus.app.service;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import org.junit.jupiter.api.Test;

/** The warm-up runs a migration's whole state path for real, and only on a scratch bus of its own. */
class MigrationWarmUpTest {

    @Test
    void theWarmUpSavesAheadRestoresAndCompletesEveryModelsDeviceOnAScratchBusAndLeavesTheServedBusUntouched() {
        try (Bus served = Bus.withDiscoveredModels()) {
            served.createContainer("c").addDevice("virtio-net");
            int rounds = MigrationWarmUp.run(served.models(), "test", 3);
            assertThat(rounds).as("virtio-net and venet at least, 3 rounds each").isGreaterThanOrEqualTo(6);
            assertThat(served.containers()).extracting(dev.jvbus.core.bus.Container::name).containsExactly("c");
            assertThat(served.requireContainer("c").devices()).hasSize(1);
        }
    }
}
