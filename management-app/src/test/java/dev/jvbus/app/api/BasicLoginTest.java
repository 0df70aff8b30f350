package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.security.core.userdetails.UserDetailsService;

class BasicLoginTest extends ApiTestBase {
    @Autowired
    UserDetailsService users;

    /**
     * Spring re-encodes a password at login when its user store can take the new hash; an in-memory store did,
     * so every later request with that password paid a bcrypt check (a migration's requests between buses among them).
     */
    @Test
    void aConfiguredPasswordIsCheckedAsConfiguredAndNotRehashedByALogin() {
        assertThat(admin().get("/api/v1/containers").status()).isEqualTo(200);
        assertThat(admin().get("/api/v1/containers").status()).isEqualTo(200);
        assertThat(users.loadUserByUsername("admin").getPassword()).isEqualTo("{noop}admin-secret");
        assertThat(new Api(port, "admin", "not-the-secret").get("/api/v1/containers").status()).isEqualTo(401);
    }
}
