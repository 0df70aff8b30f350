package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class QueueRatesTest {

    private static JsonNode devices(long buffers, long bytes) {
        return BusClient.JSON.readTree("""
                [{"devid": 2, "type": "virtio-net", "queues": [
                  {"index": 0, "name": "rx0", "running": true,
                   "counters": {"buffers": %d, "bytes": %d, "kicks": 10, "notificationsSent": 4, "notificationsSuppressed": 0}}]}]
                """.formatted(buffers, bytes));
    }

    @Test
    void ratesAreTheCounterDifferencesPerSecond() {
        var r = QueueRates.between(devices(1_000, 1_500_000), devices(3_000, 4_500_000), 2.0).getFirst();
        assertThat(r.buffers()).isEqualTo(1_000.0);
        assertThat(r.bytes()).isEqualTo(1_500_000.0);
        assertThat(r.kicks()).isZero();
        assertThat(StatsCommand.table("default", java.util.List.of(r))).containsPattern("(?m)^2\\s+virtio-net\\s+0:rx0\\s+yes\\s+1000\\s+12\\.0\\s+0\\.0");
    }

    @Test
    void aQueueFirstSeenInTheSecondReadingCountsFromZero() {
        var r = QueueRates.between(BusClient.JSON.readTree("[]"), devices(50, 0), 1.0).getFirst();
        assertThat(r.buffers()).isEqualTo(50.0);
    }
}
