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

    /**
     * However credentials fail, the answer is a 401 problem document from this app's chain, never a bare
     * 401: an empty-bodied 401 seen by a test came from something else listening.
     */
    @Test
    void everyWayOfFailingToAuthenticateIsA401ProblemDocument() {
        String[] authorizations = {null, basic("admin:wrong"), "Basic !!!", basic("admin"), "Basic ", basic("nobody:x"),
                "Digest username=\"admin\"", "Bearer not-a-token", "Negotiate abc"};
        for (String authorization : authorizations) {
            for (String method : new String[] {"GET", "POST", "DELETE"}) {
                Api.Reply reply = authorization == null ? anonymous().send(method, "/api/v1/containers/embedded", null)
                        : sendWith(method, authorization);
                assertThat(reply.status()).as(method + " " + authorization + ": " + reply).isEqualTo(401);
                assertThat(reply.contentType()).as(method + " " + authorization).startsWith("application/problem+json");
                assertThat(reply.problemType()).isEqualTo("unauthenticated");
            }
        }
    }

    private Api.Reply sendWith(String method, String authorization) {
        try {
            var b = java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/api/v1/containers/embedded"))
                    .method(method, java.net.http.HttpRequest.BodyPublishers.noBody()).header("Authorization", authorization);
            var r = java.net.http.HttpClient.newHttpClient().send(b.build(), java.net.http.HttpResponse.BodyHandlers.ofString());
            return new Api.Reply(r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), r.body(), r.headers().map());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static String basic(String userColonPassword) {
        return "Basic " + java.util.Base64.getEncoder().encodeToString(userColonPassword.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    @Test
    void healthAnswersWithoutCredentials() {
        var h = anonymous().get("/actuator/health");
        assertThat(h.status()).isEqualTo(200);
        assertThat(h.json().path("status").asString()).isEqualTo("UP");
    }
}
