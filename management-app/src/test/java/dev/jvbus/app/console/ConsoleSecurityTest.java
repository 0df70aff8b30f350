package dev.jvbus.app.console;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The console's own security chain, seen as a browser without script sees it: form login with a session,
 * a CSRF token on every change, a viewer who reads everything and whose forged changes are refused before
 * any controller; and the API beside it as it was (Basic, no session).
 */
class ConsoleSecurityTest extends ConsoleTestBase {

    @Test
    void anonymousIsSentToTheLoginFormAndTheAppsAddressLeadsToTheConsole() {
        ConsoleSession nobody = new ConsoleSession(base());
        var overview = nobody.get("/console");
        assertThat(overview.status()).isEqualTo(302);
        assertThat(overview.location()).endsWith("/console/login");
        assertThat(nobody.get("/").location()).endsWith("/console");
        var login = nobody.get("/console/login");
        assertThat(login.status()).isEqualTo(200);
        assertThat(login.body()).contains("name=\"username\"", "name=\"password\"", "name=\"_csrf\"");
    }

    @Test
    void aWrongPasswordIsRefusedOnTheLoginForm() {
        ConsoleSession s = new ConsoleSession(base());
        var login = s.get("/console/login");
        var refused = s.post("/console/login", Map.of("username", "admin", "password", "wrong", "_csrf", login.csrf()));
        assertThat(refused.location()).endsWith("/console/login?error");
        assertThat(s.get("/console").status()).as("still not logged in").isEqualTo(302);
    }

    @Test
    void aViewerSeesThePagesWithoutFormsAndItsForgedPostIsRefusedChangingNothing() {
        ConsoleSession viewer = new ConsoleSession(base()).login("viewer", "viewer-secret");
        var overview = viewer.get("/console");
        assertThat(overview.status()).isEqualTo(200);
        assertThat(overview.body()).contains("container <span>embedded</span>").contains("viewer: reads only");
        assertThat(overview.body().split("<form", -1)).as("the logout form only").hasSize(2);
        assertThat(overview.body()).doesNotContain("Hotplug a device", "Create network", "unplug…");

        // A hand-made POST with the viewer's own valid CSRF token: refused by role, not by a missing token.
        var forged = viewer.post("/console/containers", Map.of("name", "forged", "_csrf", overview.csrf()));
        assertThat(forged.status()).isEqualTo(403);
        assertThat(forged.body()).contains("needs the admin role");
        assertThat(api("GET", "/api/v1/containers/forged", null).status()).as("nothing was made").isEqualTo(404);

        var hotplug = viewer.post("/console/containers/embedded/devices", Map.of("type", "virtio-net", "action", "plug", "_csrf", overview.csrf()));
        assertThat(hotplug.status()).isEqualTo(403);
        assertThat(api("GET", "/api/v1/containers/embedded", null).json().path("devices").size())
                .as("the default's two devices only").isEqualTo(2);
    }

    @Test
    void aChangeWithoutTheCsrfTokenIsRefusedEvenForAnAdmin() {
        ConsoleSession admin = new ConsoleSession(base()).login("admin", "admin-secret");
        var forged = admin.post("/console/containers", Map.of("name", "nocsrf"));
        assertThat(forged.status()).isEqualTo(403);
        assertThat(api("GET", "/api/v1/containers/nocsrf", null).status()).isEqualTo(404);
    }

    @Test
    void anAdminsFormPostsAndRedirectsAndARefusalShowsTheProblemBesideTheField() {
        ConsoleSession admin = new ConsoleSession(base()).login("admin", "admin-secret");
        String csrf = admin.get("/console").csrf();
        var made = admin.post("/console/containers", Map.of("name", "formmade", "_csrf", csrf));
        assertThat(made.status()).isEqualTo(302);
        assertThat(made.location()).endsWith("/console");
        assertThat(admin.get("/console").body()).contains("container &#39;formmade&#39; created");
        assertThat(api("GET", "/api/v1/containers/formmade", null).status()).isEqualTo(200);

        var taken = admin.post("/console/containers", Map.of("name", "formmade", "_csrf", csrf));
        assertThat(taken.status()).as("the problem's status").isEqualTo(409);
        assertThat(taken.body()).contains("data-problem-for=\"name\">container &#39;formmade&#39; already exists</span>");
        assertThat(taken.body()).as("what was typed is kept").contains("value=\"formmade\"");
    }

    @Test
    void theApiBesideTheConsoleKeepsBasicAuthWithoutASessionOrACsrfToken() {
        var r = api("POST", "/api/v1/containers", "{\"name\":\"apiside\"}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        ConsoleSession nobody = new ConsoleSession(base());
        var refused = nobody.get("/api/v1/containers");
        assertThat(refused.status()).isEqualTo(401);
        assertThat(refused.body()).contains("credentials-needed".replace("credentials-needed", "unauthenticated"));
    }
}
