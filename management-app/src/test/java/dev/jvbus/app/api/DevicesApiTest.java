package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class DevicesApiTest extends ApiTestBase {

    @BeforeEach
    void container() {
        if (admin().get("/api/v1/containers/d").status() == 404) {
            admin().post("/api/v1/containers", "{\"name\":\"d\"}");
            admin().post("/api/v1/containers/d/networks", "{\"name\":\"lan0\"}");
        }
    }

    @Test
    void hotplugWithADenyListShowsFeaturesByNameAndHotRemoveUnplugs() {
        var r = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"mtu\":1400,\"limit\":{\"deny\":[\"MRG_RXBUF\",\"VIRTIO_NET_F_GUEST_CSUM\"]}}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        long devid = r.json().path("devid").asLong();
        assertThat(devid).isPositive();

        var shown = viewer().get("/api/v1/containers/d/devices/" + devid).json();
        assertThat(shown.path("type").asString()).isEqualTo("virtio-net");
        assertThat(shown.path("features").path("limited").valueStream().map(n -> n.asString()))
                .containsExactlyInAnyOrder("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM");
        assertThat(shown.path("features").path("offered").valueStream().map(n -> n.asString()))
                .doesNotContain("VIRTIO_NET_F_MRG_RXBUF").contains("VIRTIO_F_VERSION_1");
        assertThat(shown.path("features").path("negotiated").size()).isZero();
        assertThat(shown.path("status").size()).isZero();
        assertThat(shown.path("parameters").path("mtu").asString()).isEqualTo("1400");
        assertThat(shown.path("queues").valueStream().map(q -> q.path("name").asString())).contains("rx0", "tx0");

        assertThat(viewer().get("/api/v1/containers/d").json().path("devices").valueStream()
                .map(p -> p.path("devid").asLong())).contains(devid);

        assertThat(viewer().delete("/api/v1/containers/d/devices/" + devid).status()).isEqualTo(403);
        assertThat(admin().delete("/api/v1/containers/d/devices/" + devid).status()).isEqualTo(204);
        assertThat(admin().get("/api/v1/containers/d/devices/" + devid).problemType()).isEqualTo("no-such-device");
        assertThat(viewer().get("/api/v1/containers/d").json().path("devices").valueStream()
                .map(p -> p.path("devid").asLong())).doesNotContain(devid);
    }

    @Test
    void anAllowListOffersOnlyWhatItNames() {
        var r = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"limit\":{\"allow\":[\"VERSION_1\",\"MAC\"]}}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        assertThat(r.json().path("features").path("offered").valueStream().map(n -> n.asString()))
                .containsExactlyInAnyOrder("VIRTIO_F_VERSION_1", "VIRTIO_NET_F_MAC");
    }

    @Test
    void aRefusedHotplugSaysWhyAndLeavesNothingBehind() {
        int devices = admin().get("/api/v1/containers/d/devices").json().size();
        int ports = admin().get("/api/v1/containers/d/networks/lan0").json().path("ports").size();

        var unknownFeature = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"limit\":{\"deny\":[\"NOPE\",\"MRG_RXBUF\"]}}");
        assertThat(unknownFeature.status()).isEqualTo(400);
        assertThat(unknownFeature.problemType()).isEqualTo("unknown-feature");
        assertThat(unknownFeature.json().path("features").valueStream().map(n -> n.asString())).containsExactly("NOPE");

        var both = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"limit\":{\"deny\":[\"MAC\"],\"allow\":[\"MAC\"]}}");
        assertThat(both.problemType()).isEqualTo("invalid-parameter");

        var unknownType = admin().post("/api/v1/containers/d/devices", "{\"type\":\"floppy\"}");
        assertThat(unknownType.status()).isEqualTo(400);
        assertThat(unknownType.problemType()).isEqualTo("unknown-device-type");
        assertThat(unknownType.json().path("detail").asString()).contains("virtio-net");

        var noNetwork = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"network\":\"nowhere\"}");
        assertThat(noNetwork.problemType()).isEqualTo("no-such-network");
        assertThat(admin().get("/api/v1/containers/d/networks/nowhere").status()).isEqualTo(404);

        var badMac = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"mac\":\"zz\"}");
        assertThat(badMac.status()).isEqualTo(400);
        assertThat(badMac.problemType()).isEqualTo("invalid-parameter");
        assertThat(badMac.json().path("detail").asString()).contains("MAC address", "'zz'");

        var wrongShape = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"mtu\":\"big\"}");
        assertThat(wrongShape.problemType()).as(wrongShape.toString()).isEqualTo("malformed-document");

        assertThat(admin().get("/api/v1/containers/d/devices").json().size()).isEqualTo(devices);
        assertThat(admin().get("/api/v1/containers/d/networks/lan0").json().path("ports").size()).isEqualTo(ports);
    }

    @Test
    void aQueueSizeGivenAtHotplugHoldsTheDevicesQueuesAndIsInItsDocument() {
        var virtio = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"queueSize\":256}");
        assertThat(virtio.status()).as(virtio.toString()).isEqualTo(201);
        assertThat(virtio.json().path("parameters").path("queue-size").asString()).isEqualTo("256");
        var shown = viewer().get("/api/v1/containers/d/devices/" + virtio.json().path("devid").asLong()).json();
        assertThat(shown.path("queues").valueStream().map(q -> q.path("name").asString() + "=" + q.path("maxSize").asInt()))
                .containsExactly("rx0=256", "tx0=256", "rx1=256", "tx1=256", "rx2=256", "tx2=256", "rx3=256", "tx3=256", "ctrl=64");

        var venet = admin().post("/api/v1/containers/d/devices", "{\"type\":\"venet\",\"network\":\"lan0\",\"queueSize\":512}");
        assertThat(venet.status()).as(venet.toString()).isEqualTo(201);
        assertThat(venet.json().path("queues").valueStream().map(q -> q.path("maxSize").asInt())).containsOnly(512);

        var plain = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
        assertThat(plain.json().path("queues").get(0).path("maxSize").asInt()).as("the model's largest").isEqualTo(1024);
        assertThat(plain.json().path("parameters").has("queue-size")).isFalse();
    }

    @Test
    void aQueueSizeOutsideTheModelsRangeIsRefusedNamingTheFieldAndTheRangeAndLeavesNothing() {
        int devices = admin().get("/api/v1/containers/d/devices").json().size();
        int ports = admin().get("/api/v1/containers/d/networks/lan0").json().path("ports").size();
        for (String size : new String[] {"3000", "100", "0", "-4"}) {
            var r = admin().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"queueSize\":" + size + "}");
            assertThat(r.status()).as(r.toString()).isEqualTo(400);
            assertThat(r.contentType()).startsWith("application/problem+json");
            assertThat(r.problemType()).isEqualTo("invalid-parameter");
            assertThat(r.json().path("field").asString()).isEqualTo("queueSize");
            assertThat(r.json().path("detail").asString()).contains("a power of two in 1..1024", size);
        }
        var venet = admin().post("/api/v1/containers/d/devices", "{\"type\":\"venet\",\"network\":\"lan0\",\"queueSize\":4096}");
        assertThat(venet.json().path("field").asString()).isEqualTo("queueSize");
        assertThat(venet.json().path("detail").asString()).contains("a power of two in 1..2048");
        var inParameters = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"parameters\":{\"queue-size\":\"64\"}}");
        assertThat(inParameters.problemType()).isEqualTo("invalid-parameter");
        assertThat(inParameters.json().path("detail").asString()).contains("\"queueSize\"");
        assertThat(viewer().post("/api/v1/containers/d/devices", "{\"type\":\"venet\",\"queueSize\":64}").status()).isEqualTo(403);

        assertThat(admin().get("/api/v1/containers/d/devices").json().size()).isEqualTo(devices);
        assertThat(admin().get("/api/v1/containers/d/networks/lan0").json().path("ports").size()).isEqualTo(ports);
    }

    @Test
    void missingDevicesAndContainersAreNotFound() {
        assertThat(admin().get("/api/v1/containers/d/devices/999999").problemType()).isEqualTo("no-such-device");
        var nan = admin().get("/api/v1/containers/d/devices/not-a-number");
        assertThat(nan.problemType()).as(nan.toString()).isEqualTo("no-such-device");
        assertThat(admin().delete("/api/v1/containers/d/devices/999999").status()).isEqualTo(404);
        assertThat(admin().get("/api/v1/containers/nope/devices").problemType()).isEqualTo("no-such-container");
        assertThat(admin().post("/api/v1/containers/nope/devices", "{\"type\":\"virtio-net\"}").problemType())
                .isEqualTo("no-such-container");
        assertThat(viewer().post("/api/v1/containers/d/devices", "{\"type\":\"virtio-net\"}").status()).isEqualTo(403);
    }

    @Test
    void busyPollIsAModelParameterShownWithTheDeviceAndABadValueIsAProblemNamingIt() {
        var r = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"parameters\":{\"busy-poll\":\"on\"}}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        long devid = r.json().path("devid").asLong();
        assertThat(viewer().get("/api/v1/containers/d/devices/" + devid).json().path("parameters").path("busy-poll").asString()).isEqualTo("on");

        int devices = admin().get("/api/v1/containers/d/devices").json().size();
        var bad = admin().post("/api/v1/containers/d/devices",
                "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"parameters\":{\"busy-poll\":\"always\"}}");
        assertThat(bad.status()).as(bad.toString()).isEqualTo(400);
        assertThat(bad.json().path("detail").asString()).contains("'busy-poll' must be 'on' or 'off'");
        assertThat(admin().get("/api/v1/containers/d/devices").json().size()).as("nothing left behind").isEqualTo(devices);
        assertThat(admin().delete("/api/v1/containers/d/devices/" + devid).status()).isEqualTo(204);
    }
}
