package dev.jvbus.app.security;

import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * Who may use the management plane, from configuration:
 * <pre>
 * jvbus.security.users[0].name=ops
 * jvbus.security.users[0].password={bcrypt}$2a$10$...   (a hash; {noop}plain only for tests)
 * jvbus.security.users[0].role=viewer                   (admin or viewer)
 * </pre>
 * The user {@code admin} needs no entry: its password is generated at first start (see
 * {@link AdminPassword}) unless configured here.
 */
@ConfigurationProperties("jvbus.security")
public record SecurityProperties(List<User> users) {
    public SecurityProperties {
        users = users == null ? List.of() : List.copyOf(users);
    }

    public record User(String name, String password, Role role) { }

    public enum Role { ADMIN, VIEWER }
}
