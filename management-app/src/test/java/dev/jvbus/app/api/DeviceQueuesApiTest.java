package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.NetClient;
import dev.jvbus.connector.shm.server.ShmConnector;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;

/**
 * Each queue in a device's detail: its size, whether it runs, the indices as the device sees them, what
 * is in flight and available, and counters that survive the driver going away. Two real virtio-net
 * drivers over the shm socket exchange frames through the container's switch.
 */
class DeviceQueuesApiTest extends ApiTestBase {
    @Autowired
    ShmConnector shm;

    @Test
    void eachQueueShowsItsSizeIndicesAndCountersAfterTrafficAndTheCountsSurviveTheDriver() throws Exception {
        admin().post("/api/v1/containers", "{\"name\":\"q\"}");
        admin().post("/api/v1/containers/q/networks", "{\"name\":\"lan\"}");
        long a = admin().post("/api/v1/containers/q/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        long b = admin().post("/api/v1/containers/q/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();

        JsonNode idle = queue("q", a, "tx0");
        assertThat(idle.path("running").asBoolean()).isFalse();
        assertThat(idle.path("nextAvail").isNumber()).as("no ring, no indices").isFalse();
        assertThat(idle.path("counters").path("buffers").asLong()).isZero();
        assertThat(idle.path("maxSize").asInt()).isPositive();

        Path socket = shm.expose("q").path();
        int frames = 5;
        long txBytes = 0, rxBytes = 0;
        try (NetClient sender = NetClient.open(socket, a); NetClient receiver = NetClient.open(socket, b)) {
            for (int i = 0; i < frames; i++) {
                byte[] payload = ("frame " + i + " ".repeat(100 * i)).getBytes(StandardCharsets.US_ASCII);
                sender.send(receiver.mac(), payload);
                byte[] got = receiver.receive(30);
                assertThat(got).as("frame " + i + " arrived").isNotNull();
                int len = Math.max(60, 14 + payload.length);
                assertThat(got).hasSize(len);
                txBytes += 12 + len;    // tx: the device read header and frame
                rxBytes += 12 + len;    // rx: the device wrote header and frame
            }

            JsonNode tx = await("q", a, "tx0", q -> q.path("counters").path("kicks").asLong() > 0);
            assertThat(tx.path("running").asBoolean()).isTrue();
            assertThat(tx.path("size").asInt()).isEqualTo(NetClient.QUEUE);
            assertThat(tx.path("nextAvail").asInt()).isEqualTo(frames);
            assertThat(tx.path("nextUsed").asInt()).isEqualTo(frames);
            assertThat(tx.path("inFlight").asInt()).isZero();
            assertThat(tx.path("available").asInt()).isZero();
            JsonNode txc = tx.path("counters");
            assertThat(txc.path("buffers").asLong()).isEqualTo(frames);
            assertThat(txc.path("bytes").asLong()).isEqualTo(txBytes);
            assertThat(txc.path("kicks").asLong()).as("the sender kicked, the worker took it").isPositive();
            assertThat(txc.path("lateWakeups").isNumber()).as("slept-with-work-pending wake-ups, beside the kicks").isTrue();
            assertThat(txc.path("notificationsSent").asLong() + txc.path("notificationsSuppressed").asLong())
                    .as("one notify decision per tx batch, one batch per frame").isEqualTo(frames);
            assertThat(txc.path("linesEvicted").isNumber()).as("descriptor and frame lines evicted, beside the other counts").isTrue();
            assertThat(txc.path("linesEvicted").asLong()).as("at most a descriptor line and a frame line per batch of one frame")
                    .isBetween(0L, 2L * frames);
            assertThat(txc.path("faults").size()).isZero();

            JsonNode rx = queue("q", b, "rx0");
            assertThat(rx.path("running").asBoolean()).isTrue();
            assertThat(rx.path("nextUsed").asInt()).isEqualTo(frames);
            assertThat(rx.path("inFlight").asInt()).isZero();
            assertThat(rx.path("available").asInt()).as("every rx buffer posted again").isEqualTo(NetClient.QUEUE);
            assertThat(rx.path("counters").path("buffers").asLong()).isEqualTo(frames);
            assertThat(rx.path("counters").path("linesEvicted").asLong()).as("an rx queue evicts nothing").isZero();
            assertThat(rx.path("counters").path("bytes").asLong()).isEqualTo(rxBytes);
            assertThat(rx.path("counters").path("notificationsSent").asLong() + rx.path("counters").path("notificationsSuppressed").asLong())
                    .isEqualTo(frames);
        }

        JsonNode after = await("q", a, "tx0", q -> !q.path("running").asBoolean());
        assertThat(after.path("nextAvail").isNumber()).isFalse();
        assertThat(after.path("counters").path("buffers").asLong()).as("the counts are the device's, not the driver's").isEqualTo(frames);

        try (NetClient sender = NetClient.open(socket, a); NetClient receiver = NetClient.open(socket, b)) {
            sender.send(receiver.mac(), "one more".getBytes(StandardCharsets.US_ASCII));
            assertThat(receiver.receive(30)).isNotNull();
            JsonNode tx = queue("q", a, "tx0");
            assertThat(tx.path("nextAvail").asInt()).as("a new ring starts at 0").isEqualTo(1);
            assertThat(tx.path("counters").path("buffers").asLong()).as("and the count goes on").isEqualTo(frames + 1);
        }
    }

    @Test
    void aDriverThatBreaksTheRulesShowsTheFaultByReasonOnItsQueue() throws Exception {
        admin().post("/api/v1/containers", "{\"name\":\"qf\"}");
        admin().post("/api/v1/containers/qf/networks", "{\"name\":\"lan\"}");
        long a = admin().post("/api/v1/containers/qf/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        try (NetClient c = NetClient.open(shm.expose("qf").path(), a)) {
            c.sendWritableTx();
            JsonNode tx = await("qf", a, "tx0", q -> q.path("counters").path("faults").path("BAD_DESCRIPTOR").asLong() == 1);
            assertThat(tx.path("counters").path("faults").size()).isEqualTo(1);
            assertThat(viewer().get("/api/v1/containers/qf/devices/" + a).json().path("status").valueStream().map(JsonNode::asString))
                    .contains("NEEDS_RESET");
            assertThat(queue("qf", a, "rx0").path("counters").path("faults").size()).as("rx did nothing wrong").isZero();
        }
    }

    private JsonNode queue(String container, long devid, String name) {
        var r = viewer().get("/api/v1/containers/" + container + "/devices/" + devid);
        assertThat(r.status()).as(r.toString()).isEqualTo(200);
        for (JsonNode q : r.json().path("queues")) if (q.path("name").asString().equals(name)) return q;
        throw new AssertionError("no queue " + name + " on device " + devid + ": " + r);
    }

    private JsonNode await(String container, long devid, String name, Predicate<JsonNode> condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            JsonNode q = queue(container, devid, name);
            if (condition.test(q)) return q;
            if (System.nanoTime() > deadline) throw new AssertionError("queue " + name + " of device " + devid + " never got there: " + q);
            Thread.sleep(20);
        }
    }
}
