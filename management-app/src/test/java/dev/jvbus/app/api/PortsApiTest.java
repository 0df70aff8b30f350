package dev.jvbus.app.api;

import static dev.jvbus.core.testing.TestFrames.arpOp;
import static dev.jvbus.core.testing.TestFrames.arpRequest;
import static dev.jvbus.core.testing.TestFrames.arpSenderIp;
import static dev.jvbus.core.testing.TestFrames.arpTargetMac;
import static dev.jvbus.core.testing.TestFrames.ip;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.NetClient;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.core.testing.TestNetns;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;

/**
 * TAP ports through the API: a real TAP in a real network namespace the test makes (skipped, saying
 * why, where that cannot be done), a real virtio-net driver over the shm socket, and the real kernel
 * behind the TAP answering its ARP.
 */
class PortsApiTest extends ApiTestBase {
    static final byte[] KERNEL_IP = ip(192, 0, 2, 1), CLIENT_IP = ip(192, 0, 2, 2);

    @Autowired
    ShmConnector shm;

    @Test
    void aTapPortInANamespaceCarriesADevicesFramesToTheKernelAndBackAndShowsItsCountersUntilDetached() throws Exception {
        try (TestNetns ns = TestNetns.createOrSkip()) {
            admin().post("/api/v1/containers", "{\"name\":\"p-tap\"}");
            admin().post("/api/v1/containers/p-tap/networks", "{\"name\":\"lan\"}");
            long devid = admin().post("/api/v1/containers/p-tap/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}")
                    .json().path("devid").asLong();

            var attached = admin().post("/api/v1/containers/p-tap/networks/lan/ports",
                    "{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"jvp0\"}");
            assertThat(attached.status()).as(attached.toString()).isEqualTo(201);
            int id = attached.json().path("id").asInt();
            assertThat(attached.json().path("ifname").asString()).isEqualTo("jvp0");
            assertThat(attached.json().path("namespace").asString()).isEqualTo(ns.name());
            assertThat(ns.ip("link", "show", "jvp0")).as("the link is up").contains("UP");
            assertThat(Thread.getAllStackTraces().keySet()).as("one of the container's poll groups reads the TAP, no reader thread of its own")
                    .noneMatch(t -> t.getName().equals("jvbus-tap:jvp0-reader") && t.isAlive());
            ns.ip("addr", "add", "192.0.2.1/24", "dev", "jvp0");

            Path socket = shm.expose("p-tap").path();
            try (NetClient c = NetClient.open(socket, devid)) {
                c.sendFrame(arpRequest(c.mac(), CLIENT_IP, KERNEL_IP));
                byte[] reply = awaitArpReply(c);
                assertThat(reply).as("the kernel behind the TAP answered ARP").isNotNull();
                assertThat(arpTargetMac(reply)).isEqualTo(c.mac());
            }

            JsonNode port = tapPort(viewer().get("/api/v1/containers/p-tap/networks/lan").json(), "jvp0");
            assertThat(port).as("the TAP port in the network's detail").isNotNull();
            assertThat(port.path("id").asInt()).isEqualTo(id);
            assertThat(port.path("stats").path("txFrames").asLong()).as("frames the switch gave the kernel").isPositive();
            assertThat(port.path("stats").path("rxFrames").asLong()).as("frames the kernel sent into the switch").isPositive();

            assertThat(viewer().delete("/api/v1/containers/p-tap/networks/lan/ports/" + id).status()).isEqualTo(403);
            assertThat(admin().delete("/api/v1/containers/p-tap/networks/lan/ports/" + id).status()).isEqualTo(204);
            assertThat(ns.ipResult("link", "show", "jvp0").exit()).as("the interface went with the port").isNotZero();
            assertThat(tapPort(viewer().get("/api/v1/containers/p-tap/networks/lan").json(), "jvp0")).isNull();
            var again = admin().delete("/api/v1/containers/p-tap/networks/lan/ports/" + id);
            assertThat(again.status()).isEqualTo(404);
            assertThat(again.problemType()).isEqualTo("no-such-port");
        }
    }

    @Test
    void aMissingNamespaceOrBadInputIsAProblemThatLeavesNoPortAndAViewerIsRefused() {
        admin().post("/api/v1/containers", "{\"name\":\"p-bad\"}");
        admin().post("/api/v1/containers/p-bad/networks", "{\"name\":\"lan\"}");
        String ports = "/api/v1/containers/p-bad/networks/lan/ports";

        var missing = admin().post(ports, "{\"namespace\":\"jvbus-no-such-namespace\",\"ifname\":\"jvx0\"}");
        assertThat(missing.status()).as(missing.toString()).isEqualTo(422);
        assertThat(missing.problemType()).isEqualTo("no-such-namespace");
        assertThat(missing.json().path("field").asString()).isEqualTo("namespace");
        assertThat(missing.json().path("detail").asString()).contains("jvbus-no-such-namespace", "ip netns add");

        var path = admin().post(ports, "{\"namespace\":\"../../etc\",\"ifname\":\"jvx0\"}");
        assertThat(path.status()).isEqualTo(400);
        assertThat(path.problemType()).isEqualTo("invalid-parameter");
        var none = admin().post(ports, "{\"ifname\":\"jvx0\"}");
        assertThat(none.problemType()).isEqualTo("invalid-parameter");
        assertThat(none.json().path("field").asString()).isEqualTo("namespace");
        assertThat(admin().post("/api/v1/containers/p-bad/networks/nowhere/ports", "{\"namespace\":\"x\",\"ifname\":\"y\"}").problemType())
                .isEqualTo("no-such-network");
        var viewerRefused = viewer().post(ports, "{\"namespace\":\"x\",\"ifname\":\"y\"}");
        assertThat(viewerRefused.status()).isEqualTo(403);
        assertThat(viewerRefused.problemType()).isEqualTo("forbidden");

        assertThat(admin().delete(ports + "/7").problemType()).isEqualTo("no-such-port");
        assertThat(admin().delete(ports + "/seven").problemType()).isEqualTo("no-such-port");
        assertThat(admin().get("/api/v1/containers/p-bad/networks/lan").json().path("ports").size()).as("nothing left behind").isZero();
    }

    private static byte[] awaitArpReply(NetClient c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            byte[] f = c.receive(1);   // skips the kernel's own chatter (IPv6 router solicitations, MLD)
            if (f != null && arpOp(f) == 2 && Arrays.equals(arpSenderIp(f), KERNEL_IP)) return f;
        }
        return null;
    }

    private static JsonNode tapPort(JsonNode network, String ifname) {
        for (JsonNode p : network.path("ports")) if (ifname.equals(p.path("backend").path("ifname").asString(null))) return p;
        return null;
    }
}
