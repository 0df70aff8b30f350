package dev.jvbus.app.service;

import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The other buses this bus may move devices to, and how it logs in to each, from configuration only:
 * <pre>
 * jvbus.migration.targets[0].name=node-b                  (what a migrate request names; optional)
 * jvbus.migration.targets[0].url=https://node-b:8080      (the target's API base URL)
 * jvbus.migration.targets[0].token=jvbus_...              (a bearer token the target minted for us, or:)
 * jvbus.migration.targets[0].user=migrator                (HTTP Basic, with .password)
 * </pre>
 * A migration goes only to a target listed here, with the credential listed here: the target's operator
 * gave this bus that credential, so no bus can push a device into another without its permission, and
 * an API user of this bus never handles (or leaks into logs and operation records) another bus's
 * credentials. A target whose entry is incomplete stops the app at start, naming the entry. A token costs the
 * target one SHA-256 per request; a password, its stored hash (bcrypt: tens of milliseconds on a busy node, and two
 * of a migration's requests fall inside the device's downtime), so a token is the credential to give a bus.
 */
@ConfigurationProperties("jvbus.migration")
public record MigrationTargets(List<Target> targets) {

    /** One target: a name (optional), its API base URL, and either a bearer token or a user and password. */
    public record Target(String name, String url, String user, String password, String token) {
        /** The credential as an HTTP Authorization header value. */
        String authorization() {
            return token != null && !token.isBlank() ? "Bearer " + token.strip()
                    : "Basic " + java.util.Base64.getEncoder().encodeToString((user + ":" + password).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }

        URI uri() { return URI.create(url.strip()); }

        /** How a person names it: its name, else its URL. */
        String label() { return name != null && !name.isBlank() ? name : url; }

        @Override
        public String toString() {   // never the credential
            return "Target[" + label() + " " + url + (token != null && !token.isBlank() ? ", bearer token" : ", user " + user) + "]";
        }
    }

    public MigrationTargets {
        targets = targets == null ? List.of() : List.copyOf(targets);
        for (int i = 0; i < targets.size(); i++) check(i, targets.get(i));
    }

    private static void check(int i, Target t) {
        String at = "jvbus.migration.targets[" + i + "]";
        if (t.url() == null || t.url().isBlank()) throw new IllegalArgumentException(at + ".url is missing: the target bus's API base URL");
        URI u;
        try {
            u = URI.create(t.url().strip());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(at + ".url is not a URL: " + t.url(), e);
        }
        if (!("http".equals(u.getScheme()) || "https".equals(u.getScheme())) || u.getHost() == null)
            throw new IllegalArgumentException(at + ".url must be an absolute http(s) URL with a host: " + t.url());
        boolean token = t.token() != null && !t.token().isBlank();
        boolean basic = t.user() != null && !t.user().isBlank();
        if (token == basic)
            throw new IllegalArgumentException(at + " needs exactly one credential: .token, or .user with .password");
        if (basic && (t.password() == null || t.password().isEmpty()))
            throw new IllegalArgumentException(at + ".password is missing for user " + t.user());
    }

    /** The target {@code to} names: a configured name, or a configured URL (a trailing slash aside). */
    public Optional<Target> find(String to) {
        if (to == null) return Optional.empty();
        String wanted = strip(to);
        for (Target t : targets) if (t.name() != null && t.name().equals(wanted)) return Optional.of(t);
        for (Target t : targets) if (strip(t.url()).equals(wanted)) return Optional.of(t);
        return Optional.empty();
    }

    /** The target {@code to} names, or the refusal that lists what is configured. */
    Target require(String to) {
        if (to == null || to.isBlank())
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a migration needs \"to\": a configured target's name or URL"
                    + configured(), Map.of("field", "to"));
        return find(to).orElseThrow(() -> new OperationRefused(ProblemType.UNKNOWN_TARGET, "'" + to
                + "' is not a migration target of this bus" + configured() + "; the operator adds one with"
                + " jvbus.migration.targets[i].url and its credential", Map.of("field", "to")));
    }

    private String configured() {
        if (targets.isEmpty()) return " (none is configured)";
        List<String> names = new ArrayList<>();
        for (Target t : targets) names.add(t.label());
        return " (configured: " + String.join(", ", names) + ")";
    }

    private static String strip(String s) {
        String t = s.strip();
        while (t.endsWith("/")) t = t.substring(0, t.length() - 1);
        return t;
    }
}
