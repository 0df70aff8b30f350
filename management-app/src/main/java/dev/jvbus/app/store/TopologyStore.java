package dev.jvbus.app.store;

import dev.jvbus.app.DataDirectory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.springframework.stereotype.Component;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * The topology store: one JSON file, {@code topology.json}, in the data directory, so a person backs
 * the app up by copying that directory. Every save replaces the file atomically (written beside it,
 * forced to disk, renamed over it), so a crash leaves the old topology or the new one, never half.
 * Reading is strict: a field it does not know, a missing field or another version is refused by name
 * rather than half-understood.
 */
@Component
public class TopologyStore {
    static final String FILE = "topology.json";

    private final Path file;
    private final JsonMapper json = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES,
                    DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    public TopologyStore(DataDirectory data) {
        this.file = data.path().resolve(FILE);
    }

    public Path file() {
        return file;
    }

    /** The stored topology; empty on the first start (no file yet). */
    public Optional<TopologyDocument> load() {
        if (!Files.exists(file)) return Optional.empty();
        try {
            var root = json.readTree(Files.readString(file));
            if (!TopologyDocument.FORMAT.equals(root.path("format").asString(null)))
                throw new StoreException(file + " is not a jvbus topology (no \"format\": \"" + TopologyDocument.FORMAT + "\")");
            int version = root.path("version").asInt(-1);
            if (version != TopologyDocument.VERSION)
                throw new StoreException(file + " is topology version " + version + "; this jvbus reads version " + TopologyDocument.VERSION
                        + (version == 1 ? " (version 1 kept no exposures, so reading it would close every socket it stood for;"
                                + " move the file away to start afresh)" : ""));
            return Optional.of(json.treeToValue(root, TopologyDocument.class));
        } catch (IOException e) {
            throw new StoreException("cannot read " + file + ": " + e.getMessage());
        } catch (JacksonException | NullPointerException e) {
            throw new StoreException(file + " is damaged: " + e.getMessage());
        }
    }

    /** Replaces the stored topology atomically. */
    public synchronized void save(TopologyDocument doc) {
        try {
            DataDirectory.replaceOwnerOnly(file, json.writeValueAsBytes(doc));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot save the topology to " + file + ": " + e.getMessage(), e);
        }
    }

    /** The stored topology cannot be used; the message says which file and why. */
    public static final class StoreException extends RuntimeException {
        StoreException(String message) {
            super(message);
        }
    }
}
