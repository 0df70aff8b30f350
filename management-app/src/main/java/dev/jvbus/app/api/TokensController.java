package dev.jvbus.app.api;

import dev.jvbus.app.security.ApiTokens;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.net.URI;
import java.util.List;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping("/api/v1/tokens")
@Tag(name = "tokens", description = "Bearer tokens for scripts (admins only): minted with a role, shown once, revoked by name")
record TokensController(ApiTokens tokens) {

    /** {@code {"name": "ci", "role": "viewer"}}. */
    record NewToken(String name, String role) { }

    @PostMapping
    @Operation(summary = "Mint a bearer token",
            description = "{\"name\": \"ci\", \"role\": \"viewer\"} (role admin or viewer). The answer's \"token\" is shown this once: "
                    + "only its SHA-256 is kept. Use it as 'Authorization: Bearer <token>'.")
    ResponseEntity<ApiTokens.Minted> mint(@RequestBody NewToken body) {
        ApiTokens.Minted m = tokens.mint(body.name(), body.role());
        return ResponseEntity.created(URI.create("/api/v1/tokens/" + m.name())).body(m);
    }

    @GetMapping
    @Operation(summary = "List the tokens (names, roles, when minted; never the tokens)")
    List<ApiTokens.TokenView> list() {
        return tokens.list();
    }

    @DeleteMapping("/{name}")
    @Operation(summary = "Revoke a token: requests that present it are refused from now on")
    ResponseEntity<Void> revoke(@PathVariable String name) {
        tokens.revoke(name);
        return ResponseEntity.noContent().build();
    }
}
