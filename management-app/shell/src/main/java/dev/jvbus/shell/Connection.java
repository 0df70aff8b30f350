package dev.jvbus.shell;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Optional;

/**
 * Where the shell talks to and as whom: the API's base URL and either a user with a password (HTTP
 * Basic) or a bearer token. The password comes from the terminal or the environment, never from the
 * command line (it would show in {@code ps}); {@link #toString()} never shows it.
 */
public record Connection(URI url, String user, String password, String token) {
    public static final URI DEFAULT_URL = URI.create("http://127.0.0.1:8080");

    public Connection {
        url = base(url);
    }

    /** {@code Authorization}'s value, or empty for nobody. */
    Optional<String> authorization() {
        if (token != null && !token.isBlank()) return Optional.of("Bearer " + token);
        if (user == null) return Optional.empty();
        String pair = user + ":" + (password == null ? "" : password);
        return Optional.of("Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8)));
    }

    /** Who this is, in words: "admin", "a bearer token", "nobody". */
    String who() {
        if (token != null && !token.isBlank()) return "a bearer token";
        return user == null ? "nobody" : user;
    }

    /** The base URL without a trailing slash or an /api/v1 a person may have pasted. */
    static URI base(URI url) {
        String s = url.toString();
        while (s.endsWith("/")) s = s.substring(0, s.length() - 1);
        if (s.endsWith("/api/v1")) s = s.substring(0, s.length() - "/api/v1".length());
        if (!s.startsWith("http://") && !s.startsWith("https://"))
            throw new ShellRefusal("the bus's URL is http:// or https://, not '" + url + "'");
        return URI.create(s);
    }

    @Override
    public String toString() {
        return url + " as " + who();
    }
}
