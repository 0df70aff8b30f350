package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ContainersApiTest extends ApiTestBase {

    @Test
    void anAdminCreatesListsShowsAndDeletesAContainer() {
        var created = admin().post("/api/v1/containers", "{\"name\":\"c-crud\"}");
        assertThat(created.status()).as(created.toString()).isEqualTo(201);
        assertThat(created.json().path("name").asString()).isEqualTo("c-crud");
        assertThat(created.json().path("devices").size()).isZero();

        assertThat(admin().get("/api/v1/containers").json().findValuesAsString("name")).contains("c-crud", "embedded");
        assertThat(viewer().get("/api/v1/containers/c-crud").status()).isEqualTo(200);

        assertThat(admin().delete("/api/v1/containers/c-crud").status()).isEqualTo(204);
        var gone = admin().get("/api/v1/containers/c-crud");
        assertThat(gone.status()).isEqualTo(404);
        assertThat(gone.problemType()).isEqualTo("no-such-container");
    }

    @Test
    void deletingAContainerUnplugsItsDevices() {
        admin().post("/api/v1/containers", "{\"name\":\"c-del\"}");
        admin().post("/api/v1/containers/c-del/networks", "{\"name\":\"n0\"}");
        var d = admin().post("/api/v1/containers/c-del/devices", "{\"type\":\"virtio-net\",\"network\":\"n0\"}");
        assertThat(d.status()).as(d.toString()).isEqualTo(201);
        assertThat(admin().delete("/api/v1/containers/c-del").status()).isEqualTo(204);
        assertThat(admin().get("/api/v1/containers/c-del/devices").problemType()).isEqualTo("no-such-container");
    }

    @Test
    void aTakenNameIsAConflictAndABadNameIsABadRequest() {
        admin().post("/api/v1/containers", "{\"name\":\"c-dup\"}");
        var dup = admin().post("/api/v1/containers", "{\"name\":\"c-dup\"}");
        assertThat(dup.status()).isEqualTo(409);
        assertThat(dup.contentType()).startsWith("application/problem+json");
        assertThat(dup.problemType()).isEqualTo("name-taken");
        assertThat(dup.json().path("detail").asString()).contains("c-dup");
        assertThat(dup.json().path("field").asString()).isEqualTo("name");

        var bad = admin().post("/api/v1/containers", "{\"name\":\"no spaces/please\"}");
        assertThat(bad.status()).isEqualTo(400);
        assertThat(bad.problemType()).isEqualTo("invalid-name");
    }

    @Test
    void aBodyThatIsNotJsonIsAMalformedDocument() {
        var r = admin().post("/api/v1/containers", "{\"name\":");
        assertThat(r.status()).as(r.toString()).isEqualTo(400);
        assertThat(r.problemType()).isEqualTo("malformed-document");
    }

    @Test
    void aViewerReadsButMayNotChangeAndNobodyElseMayRead() {
        var refused = viewer().post("/api/v1/containers", "{\"name\":\"c-viewer\"}");
        assertThat(refused.status()).isEqualTo(403);
        assertThat(refused.problemType()).isEqualTo("forbidden");
        assertThat(admin().get("/api/v1/containers/c-viewer").status()).isEqualTo(404);
        assertThat(viewer().delete("/api/v1/containers/embedded").status()).isEqualTo(403);
        assertThat(admin().get("/api/v1/containers/embedded").status()).isEqualTo(200);

        var anonymous = anonymous().get("/api/v1/containers");
        assertThat(anonymous.status()).isEqualTo(401);
        assertThat(anonymous.problemType()).isEqualTo("unauthenticated");
        assertThat(new Api(port, "admin", "wrong").get("/api/v1/containers").status()).isEqualTo(401);
    }

    @Test
    void healthAnswersWithoutCredentials() {
        var h = anonymous().get("/actuator/health");
        assertThat(h.status()).isEqualTo(200);
        assertThat(h.json().path("status").asString()).isEqualTo("UP");
    }
}
