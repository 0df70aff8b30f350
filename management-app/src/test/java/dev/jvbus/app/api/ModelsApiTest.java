package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class ModelsApiTest extends ApiTestBase {

    @Test
    void theModelsListNamesEachTypeWithTheFeatureNamesALimitTakes() {
        var r = viewer().get("/api/v1/models");
        assertThat(r.status()).as(r.toString()).isEqualTo(200);
        assertThat(r.json().valueStream().map(m -> m.path("type").asString())).contains("venet", "virtio-net").isSorted();
        JsonNode virtio = r.json().valueStream().filter(m -> m.path("type").asString().equals("virtio-net")).findFirst().orElseThrow();
        assertThat(virtio.path("virtio").asBoolean()).isTrue();
        assertThat(virtio.path("features").valueStream().map(JsonNode::asString)).contains("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_F_VERSION_1");
        assertThat(virtio.path("queues").valueStream().map(JsonNode::asString)).contains("rx0", "tx0");
        assertThat(anonymous().get("/api/v1/models").status()).isEqualTo(401);
    }
}
