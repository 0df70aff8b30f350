package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class NetworksApiTest extends ApiTestBase {

    @Test
    void anAdminCreatesShowsAndDeletesANetwork() {
        admin().post("/api/v1/containers", "{\"name\":\"n-crud\"}");
        var created = admin().post("/api/v1/containers/n-crud/networks", "{\"name\":\"lan1\"}");
        assertThat(created.status()).as(created.toString()).isEqualTo(201);
        assertThat(viewer().get("/api/v1/containers/n-crud/networks").json().findValuesAsString("name")).containsExactly("lan1");
        var shown = viewer().get("/api/v1/containers/n-crud/networks/lan1");
        assertThat(shown.json().path("ports").size()).isZero();
        assertThat(shown.json().path("macTable").size()).isZero();
        assertThat(admin().delete("/api/v1/containers/n-crud/networks/lan1").status()).isEqualTo(204);
        assertThat(admin().get("/api/v1/containers/n-crud/networks/lan1").problemType()).isEqualTo("no-such-network");
    }

    @Test
    void aNetworkWithPortsIsKeptUnlessForcedAndForceUnplugsItsDevices() {
        admin().post("/api/v1/containers", "{\"name\":\"n-force\"}");
        admin().post("/api/v1/containers/n-force/networks", "{\"name\":\"lan\"}");
        var added = admin().post("/api/v1/containers/n-force/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}");
        assertThat(added.status()).as(added.toString()).isEqualTo(201);
        long devid = added.json().path("devid").asLong();

        var refused = admin().delete("/api/v1/containers/n-force/networks/lan");
        assertThat(refused.status()).isEqualTo(409);
        assertThat(refused.problemType()).isEqualTo("network-in-use");
        assertThat(refused.json().path("devices").get(0).asLong()).isEqualTo(devid);
        assertThat(admin().get("/api/v1/containers/n-force/devices/" + devid).status()).isEqualTo(200);

        assertThat(admin().delete("/api/v1/containers/n-force/networks/lan?force=true").status()).isEqualTo(204);
        assertThat(admin().get("/api/v1/containers/n-force/devices/" + devid).problemType()).isEqualTo("no-such-device");
    }

    @Test
    void aHotpluggedDeviceIsOnItsNetworksSwitchWithItsMacBeforeAnyDriverAndLeavesItWhenUnplugged() {
        admin().post("/api/v1/containers", "{\"name\":\"n-join\"}");
        admin().post("/api/v1/containers/n-join/networks", "{\"name\":\"lan\"}");
        long virtio = admin().post("/api/v1/containers/n-join/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan\",\"mac\":\"02:aa:00:00:00:01\"}").json().path("devid").asLong();
        var venet = admin().post("/api/v1/containers/n-join/devices", "{\"type\":\"venet\",\"network\":\"lan\"}");
        assertThat(venet.status()).as(venet.toString()).isEqualTo(201);
        long venetId = venet.json().path("devid").asLong();
        String venetMac = venet.json().path("parameters").path("mac").asString(null);

        JsonNode lan = viewer().get("/api/v1/containers/n-join/networks/lan").json();
        assertThat(lan.path("ports").valueStream().map(p -> p.path("backend").path("devid").asLong()))
                .as(lan.toString()).containsExactlyInAnyOrder(virtio, venetId);
        int virtioPort = lan.path("ports").valueStream().filter(p -> p.path("backend").path("devid").asLong() == virtio)
                .findFirst().orElseThrow().path("id").asInt();
        assertThat(lan.path("macTable").valueStream().map(e -> e.path("mac").asString() + "@" + e.path("portId").asInt()))
                .as("in the MAC table before any frame").contains("02:aa:00:00:00:01@" + virtioPort);
        assertThat(lan.path("macTable").size()).isEqualTo(2);
        if (venetMac != null) assertThat(lan.path("macTable").findValuesAsString("mac")).contains(venetMac);

        assertThat(admin().delete("/api/v1/containers/n-join/devices/" + virtio).status()).isEqualTo(204);
        JsonNode after = viewer().get("/api/v1/containers/n-join/networks/lan").json();
        assertThat(after.path("ports").valueStream().map(p -> p.path("backend").path("devid").asLong())).containsExactly(venetId);
        assertThat(after.path("macTable").findValuesAsString("mac")).doesNotContain("02:aa:00:00:00:01");
    }

    @Test
    void badNamesTakenNamesAndViewersAreRefused() {
        admin().post("/api/v1/containers", "{\"name\":\"n-bad\"}");
        admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"x\"}");
        assertThat(admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"x\"}").problemType()).isEqualTo("name-taken");
        assertThat(admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"-x\"}").problemType()).isEqualTo("invalid-name");
        assertThat(admin().post("/api/v1/containers/none/networks", "{\"name\":\"y\"}").problemType()).isEqualTo("no-such-container");
        assertThat(viewer().post("/api/v1/containers/n-bad/networks", "{\"name\":\"y\"}").status()).isEqualTo(403);
        assertThat(viewer().delete("/api/v1/containers/n-bad/networks/x").status()).isEqualTo(403);
        assertThat(admin().get("/api/v1/containers/n-bad/networks/x").status()).isEqualTo(200);
        var missing = admin().delete("/api/v1/containers/n-bad/networks/none");
        assertThat(missing.status()).isEqualTo(404);
        assertThat(missing.problemType()).isEqualTo("no-such-network");
        assertThat(admin().get("/api/v1/containers/none/networks").problemType()).isEqualTo("no-such-container");
    }
}
