package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.realclients.Testpmd;
import dev.jvbus.connector.vhostuser.realclients.Tools;
import dev.jvbus.core.sys.PeerCredentials;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import tools.jackson.databind.JsonNode;

/**
 * Issue 12's done-when test for exposures: a virtio-net device hotplugged through the API, exposed on
 * vhost-user through the API, and a real vhost-user front-end (DPDK's testpmd, virtio_user PMD, another
 * process) on the socket the API returned. The device's document then shows that front-end's session:
 * its pid (the kernel's word, SO_PEERCRED) and the features it negotiated, by name. Skipped, naming the
 * package, where dpdk-testpmd is missing.
 */
@Tag("real-client")
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class DeviceSessionRealClientTest extends ApiTestBase {
    static final String MAC = "02:00:00:00:e1:01";

    @Test
    void aTestpmdFrontEndOnTheSocketTheApiReturnedIsInTheDevicesDetailWithItsPidAndNegotiatedFeatures() throws Exception {
        Tools.require(Tools.TESTPMD);
        assertThat(admin().post("/api/v1/containers", "{\"name\":\"rc\"}").status()).isEqualTo(201);
        admin().post("/api/v1/containers/rc/networks", "{\"name\":\"lan0\"}");
        var hotplug = admin().post("/api/v1/containers/rc/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"mac\":\"" + MAC + "\"}");
        assertThat(hotplug.status()).as(hotplug.toString()).isEqualTo(201);
        long devid = hotplug.json().path("devid").asLong();
        var exposed = admin().post("/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"rc\",\"devid\":" + devid + "}");
        assertThat(exposed.status()).as(exposed.toString()).isEqualTo(201);
        String exposure = exposed.json().path("id").asString();
        Path socket = Path.of(exposed.json().path("path").asString());
        String device = "/api/v1/containers/rc/devices/" + devid;

        try (Testpmd pmd = Testpmd.builder().name("api-session-" + ProcessHandle.current().pid())
                .virtioUser(socket, "mac=" + MAC).interactive().ealArgs("--main-lcore", "1").start()) {
            pmd.awaitStarted(Testpmd.START_WAIT);

            JsonNode doc = eventually("the front-end's session shows negotiated features in the device's document",
                    () -> viewer().get(device).json(),
                    d -> d.path("exposures").path(0).path("sessions").path(0).path("devices").path(0).path("negotiated").size() > 0);
            JsonNode e = doc.path("exposures").get(0);
            assertThat(e.path("id").asString()).isEqualTo(exposure);
            assertThat(e.path("state").asString()).isEqualTo("CONNECTED");
            assertThat(e.path("sessions").size()).isEqualTo(1);
            JsonNode session = e.path("sessions").get(0);
            long pid = session.path("pid").asLong();
            ProcessHandle peer = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("no process " + pid));
            assertThat(peer.info().command().orElse("")).as("the session's pid is testpmd's").endsWith("dpdk-testpmd");
            assertThat(pid == pmd.console().pid() || ProcessHandle.of(pmd.console().pid()).orElseThrow().descendants()
                    .anyMatch(p -> p.pid() == pid)).as("the testpmd this test started").isTrue();
            assertThat(session.path("uid").asInt()).isEqualTo(PeerCredentials.ofThisProcess().uid());
            JsonNode features = session.path("devices").get(0);
            assertThat(features.path("devid").asLong()).isEqualTo(devid);
            assertThat(features.path("negotiated").valueStream().map(JsonNode::asString)).contains("VIRTIO_F_VERSION_1")
                    .containsExactlyInAnyOrderElementsOf(doc.path("features").path("negotiated").valueStream().map(JsonNode::asString).toList());
            assertThat(viewer().get("/api/v1/exposures/" + exposure).json().path("sessions").path(0).path("pid").asLong()).isEqualTo(pid);

            pmd.quit();
        }
        JsonNode after = eventually("the session ends with the front-end", () -> viewer().get(device).json(),
                d -> d.path("exposures").path(0).path("sessions").size() == 0);
        assertThat(after.path("exposures").get(0).path("state").asString()).isEqualTo("LISTENING");
        assertThat(admin().delete("/api/v1/containers/rc").status()).isEqualTo(204);
    }

    private static JsonNode eventually(String what, Supplier<JsonNode> read, Predicate<JsonNode> done) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        JsonNode last = read.get();
        while (!done.test(last)) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out: " + what + "; last seen: " + last);
            Thread.sleep(20);
            last = read.get();
        }
        return last;
    }
}
