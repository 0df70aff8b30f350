package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.sys.Kvm;
import dev.jvbus.core.testing.TestNetns;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * /api/v1/microvms: an operator starts a micro-VM on the KVM connector, the kernel pings it through a TAP on
 * the container's network, its session shows up with the exposures, and stopping it releases its device.
 * Every refusal by its type; the viewer reads and is refused a start. Skipped where /dev/kvm is not usable.
 */
class MicroVmsApiTest extends ApiTestBase {
    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    private long virtioNet(String container) {
        assertThat(admin().post("/api/v1/containers", "{\"name\":\"" + container + "\"}").status()).isEqualTo(201);
        admin().post("/api/v1/containers/" + container + "/networks", "{\"name\":\"lan\"}");
        return admin().post("/api/v1/containers/" + container + "/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}")
                .json().path("devid").asLong();
    }

    private static String responder(String container, long devid, String ip) {
        return "{\"container\":\"" + container + "\",\"program\":\"responder\",\"memoryMiB\":4,\"devid\":" + devid + ",\"ip\":\"" + ip + "\"}";
    }

    @Test
    void aMicroVmStartedThroughTheApiAnswersTheKernelsPingShowsItsSessionAndStops() throws Exception {
        try (TestNetns ns = TestNetns.createOrSkip()) {
            long devid = virtioNet("vm-ping");
            assertThat(admin().post("/api/v1/containers/vm-ping/networks/lan/ports",
                    "{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"jvm0\"}").status()).isEqualTo(201);
            ns.ip("addr", "add", "192.0.2.1/24", "dev", "jvm0");

            var started = admin().post("/api/v1/microvms", responder("vm-ping", devid, "192.0.2.2"));
            assertThat(started.status()).as(started.toString()).isEqualTo(201);
            String id = started.json().path("id").asString();
            assertThat(started.json().path("state").asString()).isEqualTo("running");

            Process ping = new ProcessBuilder(ns.wrap(List.of("ping", "-c", "3", "-i", "0.2", "-w", "60", "192.0.2.2")))
                    .redirectErrorStream(true).start();
            String out = new String(ping.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(ping.waitFor(90, TimeUnit.SECONDS)).isTrue();
            assertThat(ping.exitValue()).as(out).isZero();

            JsonNode shown = viewer().get("/api/v1/microvms/" + id).json();
            assertThat(shown.path("counters").path("echoReplies").asLong()).as(shown.toString()).isGreaterThanOrEqualTo(3);
            JsonNode exposure = viewer().get("/api/v1/exposures/" + id).json();
            assertThat(exposure.path("kind").asString()).isEqualTo("kvm");
            JsonNode session = exposure.path("sessions").get(0);
            assertThat(session.path("pid").asLong()).isEqualTo(ProcessHandle.current().pid());
            assertThat(session.path("devices").get(0).path("devid").asLong()).isEqualTo(devid);
            assertThat(session.path("devices").get(0).path("negotiated").toString()).contains("VIRTIO_F_VERSION_1");

            var again = admin().post("/api/v1/microvms", responder("vm-ping", devid, "192.0.2.3"));
            assertThat(again.status()).isEqualTo(409);
            assertThat(again.problemType()).isEqualTo("device-busy");
            assertThat(viewer().post("/api/v1/microvms", responder("vm-ping", devid, "192.0.2.3")).status()).as("a viewer").isEqualTo(403);
            assertThat(viewer().delete("/api/v1/microvms/" + id).status()).as("a viewer").isEqualTo(403);

            var stopped = admin().delete("/api/v1/microvms/" + id);
            assertThat(stopped.status()).as(stopped.toString()).isEqualTo(200);
            assertThat(stopped.json().path("state").asString()).isEqualTo("ended");
            assertThat(stopped.json().path("outcome").asString()).isEqualTo("stopped");
            assertThat(viewer().get("/api/v1/exposures/" + id).status()).as("its exposure is gone").isEqualTo(404);
            var restarted = admin().post("/api/v1/microvms", responder("vm-ping", devid, "192.0.2.2"));
            assertThat(restarted.status()).as("the device is free again: " + restarted).isEqualTo(201);
            admin().delete("/api/v1/microvms/" + restarted.json().path("id").asString());
        }
    }

    @Test
    void badRequestsAreRefusedByTypeAndLeaveNothingRunning() {
        long devid = virtioNet("vm-bad");
        long venet = admin().post("/api/v1/containers/vm-bad/devices", "{\"type\":\"venet\",\"network\":\"lan\"}").json().path("devid").asLong();
        int before = viewer().get("/api/v1/microvms").json().size();

        expect(admin().post("/api/v1/microvms", "{\"container\":\"vm-bad\",\"program\":\"doom\",\"devid\":" + devid + ",\"ip\":\"192.0.2.2\"}"),
                400, "invalid-parameter", "program");
        expect(admin().post("/api/v1/microvms", responder("nowhere", devid, "192.0.2.2")), 404, "no-such-container", null);
        expect(admin().post("/api/v1/microvms", responder("vm-bad", 999, "192.0.2.2")), 404, "no-such-device", null);
        expect(admin().post("/api/v1/microvms", responder("vm-bad", venet, "192.0.2.2")), 400, "invalid-parameter", "devid");
        expect(admin().post("/api/v1/microvms", responder("vm-bad", devid, "192.0.2.300")), 400, "invalid-parameter", "ip");
        expect(admin().post("/api/v1/microvms", responder("vm-bad", devid, "224.0.0.1")), 400, "invalid-parameter", "ip");
        expect(admin().post("/api/v1/microvms", responder("vm-bad", devid, "192.0.2.2").replace("\"memoryMiB\":4", "\"memoryMiB\":3")),
                400, "invalid-parameter", "memoryMiB");
        expect(admin().get("/api/v1/microvms/kvm-9999"), 404, "no-such-microvm", null);
        expect(admin().delete("/api/v1/microvms/kvm-9999"), 404, "no-such-microvm", null);
        assertThat(viewer().get("/api/v1/microvms").json().size()).as("nothing started").isEqualTo(before);
        assertThat(viewer().get("/api/v1/containers/vm-bad/devices/" + devid).status()).isEqualTo(200);
    }

    private static void expect(Api.Reply r, int status, String type, String field) {
        assertThat(r.status()).as(r.toString()).isEqualTo(status);
        assertThat(r.problemType()).as(r.toString()).isEqualTo(type);
        if (field != null) assertThat(r.json().path("field").asString()).as(r.toString()).isEqualTo(field);
    }
}
