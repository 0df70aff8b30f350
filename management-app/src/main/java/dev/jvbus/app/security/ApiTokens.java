package dev.jvbus.app.security;

import dev.jvbus.app.DataDirectory;
import dev.jvbus.app.service.BusEvent;
import dev.jvbus.app.service.OperationRefused;
import dev.jvbus.app.service.ProblemType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.stereotype.Service;
import tools.jackson.core.JacksonException;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * Bearer tokens for the API ({@code Authorization: Bearer jvbus_...}): an admin mints one with a name
 * and a role, sees it once in the answer, and revokes it by name. Only each token's SHA-256 is kept, in
 * {@code <data-dir>/api-tokens.json} (owner-only, replaced atomically), so a copy of the data directory
 * does not give anyone the tokens. A token is 32 random bytes: far too many to guess, so a plain hash
 * (not a slow password hash) is enough, and checking one costs a hash and a map lookup.
 */
@Service
public class ApiTokens {
    static final String FILE = "api-tokens.json";
    static final String PREFIX = "jvbus_";
    /** At most this many tokens: each one is a credential an operator must keep track of. */
    public static final int LIMIT = 100;
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}");

    /** One token as stored: never the token itself. */
    public record Stored(String name, SecurityProperties.Role role, String sha256, Instant created) { }

    /** A token as listed: its name, role and when it was minted. */
    public record TokenView(String name, String role, Instant created) { }

    /** A token just minted: the only time {@code token} is shown. */
    public record Minted(String name, String role, Instant created, String token) { }

    private final Path file;
    private final ApplicationEventPublisher events;
    private final SecureRandom random = new SecureRandom();
    private final JsonMapper json = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();
    private List<Stored> tokens;   // under this; read by authenticate through the volatile snapshot below
    private volatile Map<String, Stored> byHash;

    public ApiTokens(DataDirectory data, ApplicationEventPublisher events) {
        this.file = data.path().resolve(FILE);
        this.events = events;
        this.tokens = load();
        this.byHash = index(tokens);
    }

    /** The token presented in a request, if it is one this app minted and did not revoke. */
    public Optional<Stored> authenticate(String presented) {
        if (presented == null || !presented.startsWith(PREFIX)) return Optional.empty();
        return Optional.ofNullable(byHash.get(sha256(presented)));
    }

    public synchronized List<TokenView> list() {
        return tokens.stream().map(t -> new TokenView(t.name(), t.role().name().toLowerCase(), t.created())).toList();
    }

    /** Mints a token for {@code role} ("admin" or "viewer"); the answer is the only place it is shown. */
    public Minted mint(String name, String role) {
        if (name == null || !NAME.matcher(name).matches())
            throw new OperationRefused(ProblemType.INVALID_NAME, "invalid token name '" + name
                    + "': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", Map.of("field", "name"));
        SecurityProperties.Role r = role(role);
        Minted minted;
        synchronized (this) {
            if (tokens.stream().anyMatch(t -> t.name().equals(name)))
                throw new OperationRefused(ProblemType.NAME_TAKEN, "a token named '" + name + "' exists; revoke it first to mint a new one",
                        Map.of("field", "name"));
            if (tokens.size() >= LIMIT)
                throw new OperationRefused(ProblemType.LIMIT_REACHED, "this app already has its limit of " + LIMIT + " tokens; revoke some first");
            byte[] raw = new byte[32];
            random.nextBytes(raw);
            String token = PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
            Instant now = Instant.now();
            List<Stored> next = new ArrayList<>(tokens);
            next.add(new Stored(name, r, sha256(token), now));
            save(next);
            minted = new Minted(name, r.name().toLowerCase(), now, token);
        }
        events.publishEvent(BusEvent.now("token-minted", "/api/v1/tokens/" + name, Map.of("name", name, "role", minted.role())));
        return minted;
    }

    /** Revokes the token named {@code name}: requests that present it are refused from now on. */
    public void revoke(String name) {
        synchronized (this) {
            List<Stored> next = new ArrayList<>(tokens);
            if (!next.removeIf(t -> t.name().equals(name)))
                throw new OperationRefused(ProblemType.NO_SUCH_TOKEN, "no token named '" + name + "'; there are "
                        + tokens.stream().map(Stored::name).toList());
            save(next);
        }
        events.publishEvent(BusEvent.now("token-revoked", "/api/v1/tokens/" + name, Map.of("name", name)));
    }

    private static SecurityProperties.Role role(String role) {
        if (role != null) {
            for (SecurityProperties.Role r : SecurityProperties.Role.values()) if (r.name().equalsIgnoreCase(role)) return r;
        }
        throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a token's \"role\" is admin or viewer, not '" + role + "'",
                Map.of("field", "role"));
    }

    private List<Stored> load() {
        if (!Files.exists(file)) return List.of();
        try {
            return List.copyOf(json.readValue(Files.readString(file), new TypeReference<List<Stored>>() { }));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the API tokens in " + file + ": " + e.getMessage(), e);
        } catch (JacksonException e) {
            throw new IllegalStateException(file + " is damaged (delete it to revoke every token): " + e.getMessage(), e);
        }
    }

    /** Replaces the file atomically (written beside it, forced, renamed over it), then the tokens in force. */
    private void save(List<Stored> next) {
        try {
            DataDirectory.replaceOwnerOnly(file, json.writeValueAsBytes(next));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep the API tokens in " + file + ": " + e.getMessage(), e);
        }
        tokens = List.copyOf(next);
        byHash = index(tokens);
    }

    private static Map<String, Stored> index(List<Stored> tokens) {
        Map<String, Stored> m = new java.util.HashMap<>();
        for (Stored t : tokens) m.put(t.sha256(), t);
        return Map.copyOf(m);
    }

    static String sha256(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-256", e);
        }
    }
}
