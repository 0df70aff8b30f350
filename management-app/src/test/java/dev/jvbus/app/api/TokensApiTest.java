package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Value;

class TokensApiTest extends ApiTestBase {
    @Value("${jvbus.data-dir}")
    String dataDir;

    @Test
    void aMintedTokenIsShownOnceKeptOnlyAsAHashAndWorksAsABearerWithItsRole() throws Exception {
        var viewerToken = admin().post("/api/v1/tokens", "{\"name\":\"ci-read\",\"role\":\"viewer\"}");
        assertThat(viewerToken.status()).as(viewerToken.toString()).isEqualTo(201);
        String vt = viewerToken.json().path("token").asString();
        assertThat(vt).startsWith("jvbus_").hasSizeGreaterThan(40);
        assertThat(viewerToken.json().path("role").asString()).isEqualTo("viewer");

        Api reader = anonymous().withBearer(vt);
        assertThat(reader.get("/api/v1/containers").status()).isEqualTo(200);
        var refused = reader.post("/api/v1/containers", "{\"name\":\"by-viewer-token\"}");
        assertThat(refused.status()).isEqualTo(403);
        assertThat(refused.problemType()).isEqualTo("forbidden");
        assertThat(admin().get("/api/v1/containers/by-viewer-token").status()).isEqualTo(404);

        String at = admin().post("/api/v1/tokens", "{\"name\":\"ci-admin\",\"role\":\"admin\"}").json().path("token").asString();
        var made = anonymous().withBearer(at).post("/api/v1/containers", "{\"name\":\"by-admin-token\"}");
        assertThat(made.status()).as(made.toString()).isEqualTo(201);

        var listed = admin().get("/api/v1/tokens");
        assertThat(listed.json().findValuesAsString("name")).contains("ci-read", "ci-admin");
        assertThat(listed.body()).doesNotContain(vt, at);
        Path file = Path.of(dataDir).resolve("api-tokens.json");
        assertThat(Files.readString(file)).doesNotContain(vt, at).contains("ci-read");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
    }

    @Test
    void aWrongOrRevokedTokenIsA401ProblemAndNeverFallsBackToAnotherLogin() {
        var wrong = anonymous().withBearer("jvbus_not-a-token-this-app-minted").get("/api/v1/containers");
        assertThat(wrong.status()).isEqualTo(401);
        assertThat(wrong.contentType()).startsWith("application/problem+json");
        assertThat(wrong.problemType()).isEqualTo("unauthenticated");
        assertThat(wrong.json().path("detail").asString()).contains("bearer token");
        assertThat(anonymous().withBearer("admin:admin-secret").get("/api/v1/containers").status()).isEqualTo(401);

        String t = admin().post("/api/v1/tokens", "{\"name\":\"short-lived\",\"role\":\"admin\"}").json().path("token").asString();
        assertThat(anonymous().withBearer(t).get("/api/v1/containers").status()).isEqualTo(200);
        assertThat(admin().delete("/api/v1/tokens/short-lived").status()).isEqualTo(204);
        var revoked = anonymous().withBearer(t).get("/api/v1/containers");
        assertThat(revoked.status()).isEqualTo(401);
        assertThat(revoked.problemType()).isEqualTo("unauthenticated");
    }

    @Test
    void tokensAreAnAdminsBusinessAndBadRequestsAreProblems() {
        assertThat(viewer().post("/api/v1/tokens", "{\"name\":\"mine\",\"role\":\"admin\"}").problemType()).isEqualTo("forbidden");
        assertThat(viewer().get("/api/v1/tokens").status()).isEqualTo(403);
        assertThat(anonymous().get("/api/v1/tokens").status()).isEqualTo(401);
        String vt = admin().post("/api/v1/tokens", "{\"name\":\"ro\",\"role\":\"viewer\"}").json().path("token").asString();
        assertThat(anonymous().withBearer(vt).post("/api/v1/tokens", "{\"name\":\"escalate\",\"role\":\"admin\"}").status()).isEqualTo(403);
        assertThat(anonymous().withBearer(vt).delete("/api/v1/tokens/ro").status()).isEqualTo(403);

        assertThat(admin().post("/api/v1/tokens", "{\"name\":\"ro\",\"role\":\"viewer\"}").problemType()).isEqualTo("name-taken");
        assertThat(admin().post("/api/v1/tokens", "{\"name\":\"no spaces\",\"role\":\"viewer\"}").problemType()).isEqualTo("invalid-name");
        var role = admin().post("/api/v1/tokens", "{\"name\":\"x\",\"role\":\"root\"}");
        assertThat(role.status()).isEqualTo(400);
        assertThat(role.problemType()).isEqualTo("invalid-parameter");
        assertThat(role.json().path("field").asString()).isEqualTo("role");
        var none = admin().delete("/api/v1/tokens/never-minted");
        assertThat(none.status()).isEqualTo(404);
        assertThat(none.problemType()).isEqualTo("no-such-token");
    }
}
