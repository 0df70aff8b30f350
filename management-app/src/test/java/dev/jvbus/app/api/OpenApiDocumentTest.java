package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.swagger.v3.parser.OpenAPIV3Parser;
import io.swagger.v3.parser.core.models.ParseOptions;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class OpenApiDocumentTest extends ApiTestBase {

    /** Every endpoint of the API, path to methods, as the contract in issue 12 fixes them. */
    private static final Map<String, Set<String>> ENDPOINTS = Map.ofEntries(
            Map.entry("/api/v1/containers", Set.of("get", "post")),
            Map.entry("/api/v1/containers/{name}", Set.of("get", "delete")),
            Map.entry("/api/v1/containers/{container}/networks", Set.of("get", "post")),
            Map.entry("/api/v1/containers/{container}/networks/{name}", Set.of("get", "delete")),
            Map.entry("/api/v1/containers/{container}/networks/{network}/ports", Set.of("post")),
            Map.entry("/api/v1/containers/{container}/networks/{network}/ports/{id}", Set.of("delete")),
            Map.entry("/api/v1/containers/{container}/devices", Set.of("get", "post")),
            Map.entry("/api/v1/containers/{container}/devices/{devid}", Set.of("get", "delete")),
            Map.entry("/api/v1/tokens", Set.of("get", "post")),
            Map.entry("/api/v1/tokens/{name}", Set.of("delete")),
            Map.entry("/api/v1/exposures", Set.of("get", "post")),
            Map.entry("/api/v1/exposures/{id}", Set.of("get", "delete")),
            Map.entry("/api/v1/microvms", Set.of("get", "post")),
            Map.entry("/api/v1/microvms/{id}", Set.of("get", "delete")),
            Map.entry("/api/v1/containers/{container}/devices/{devid}/snapshot", Set.of("post")),
            Map.entry("/api/v1/containers/{container}/devices/{devid}/resume", Set.of("post")),
            Map.entry("/api/v1/containers/{container}/devices/{devid}/complete-restore", Set.of("post")),
            Map.entry("/api/v1/containers/{container}/devices/{devid}/migrate", Set.of("post")),
            Map.entry("/api/v1/containers/{name}/restore", Set.of("post")),
            Map.entry("/api/v1/operations", Set.of("get")),
            Map.entry("/api/v1/operations/{id}", Set.of("get", "delete")),
            Map.entry("/api/v1/operations/{id}/cancel", Set.of("post")),
            Map.entry("/api/v1/operations/{id}/result", Set.of("get")),
            Map.entry("/api/v1/events", Set.of("get")),
            Map.entry("/api/v1/models", Set.of("get")));

    @Test
    void theDocumentIsValidOpenApi3AndListsEveryEndpoint() {
        var r = viewer().get("/v3/api-docs");
        assertThat(r.status()).as(r.toString()).isEqualTo(200);
        ParseOptions strict = new ParseOptions();
        strict.setResolve(true);
        var parsed = new OpenAPIV3Parser().readContents(r.body(), null, strict);
        assertThat(parsed.getMessages()).as("OpenAPI validation messages").isEmpty();
        var api = parsed.getOpenAPI();
        assertThat(api.getOpenapi()).startsWith("3.");
        ENDPOINTS.forEach((path, methods) -> {
            var item = api.getPaths().get(path);
            assertThat(item).as(path).isNotNull();
            assertThat(item.readOperationsMap().keySet().stream().map(m -> m.name().toLowerCase()))
                    .as(path).containsExactlyInAnyOrderElementsOf(methods);
        });
        assertThat(api.getPaths().keySet()).as("no endpoint outside the contract").allMatch(ENDPOINTS::containsKey);
    }

    @Test
    void theDocumentAndSwaggerUiNeedCredentials() {
        assertThat(anonymous().get("/v3/api-docs").status()).isEqualTo(401);
        assertThat(viewer().get("/swagger-ui.html").status()).isIn(200, 302);
    }
}
