package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

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
    void badNamesTakenNamesAndViewersAreRefused() {
        admin().post("/api/v1/containers", "{\"name\":\"n-bad\"}");
        admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"x\"}");
        assertThat(admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"x\"}").problemType()).isEqualTo("name-taken");
        assertThat(admin().post("/api/v1/containers/n-bad/networks", "{\"name\":\"-x\"}").problemType()).isEqualTo("invalid-name");
        assertThat(admin().post("/api/v1/containers/none/networks", "{\"name\":\"y\"}").problemType()).isEqualTo("no-such-container");
        assertThat(viewer().post("/api/v1/containers/n-bad/networks", "{\"name\":\"y\"}").status()).isEqualTo(403);
        assertThat(viewer().delete("/api/v1/containers/n-bad/networks/x").status()).isEqualTo(403);
        assertThat(admin().get("/api/v1/containers/n-bad/networks/x").status()).isEqualTo(200);
    }
}
