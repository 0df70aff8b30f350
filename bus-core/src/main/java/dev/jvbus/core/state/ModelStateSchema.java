package dev.jvbus.core.state;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

import java.util.Objects;

/**
 * How a model's state is named, versioned and read: the model's part of the state SPI. A model
 * gives its schema through {@code DeviceModel.stateSchema()}; {@link StateCodec} writes its state as
 * <pre>{"type": type, "version": version, ...the record's components}</pre>
 * and reads back only a state of this type and version, into {@code recordClass}, refusing a missing
 * or unknown field by name.
 *
 * @param type        the state's type name (the model's type name: "venet", "virtio-net")
 * @param version     bumped on any change to the record's fields or their meaning
 * @param recordClass the record the state is read into
 */
public record ModelStateSchema<S extends Record & ModelState>(String type, int version, Class<S> recordClass, List<Older<S>> older) {

    /**
     * An earlier version of a model's state that this bus still restores: the record it was read into
     * then, and how such a state becomes the current record (what the newer fields were before they existed).
     */
    public record Older<S>(int version, Class<? extends Record> recordClass, Function<Object, S> upgrade) {
        public Older {
            Objects.requireNonNull(recordClass, "recordClass");
            Objects.requireNonNull(upgrade, "upgrade");
        }
    }

    /** A schema that reads only its own version. */
    public ModelStateSchema(String type, int version, Class<S> recordClass) {
        this(type, version, recordClass, List.of());
    }

    /** The schema of a model that keeps nothing beyond its config space and queues. */
    public static final ModelStateSchema<NoModelState> NONE = new ModelStateSchema<>("none", 1, NoModelState.class);

    public ModelStateSchema {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(recordClass, "recordClass");
        if (type.isBlank()) throw new IllegalArgumentException("a model state's type name must not be blank");
        if (version < 1) throw new IllegalArgumentException("model state version must be >= 1: " + version);
        older = List.copyOf(older);
        for (Older<S> o : older)
            if (o.version() < 1 || o.version() >= version)
                throw new IllegalArgumentException("an older " + type + " state version must be in 1.." + (version - 1) + ": " + o.version());
    }

    /**
     * This schema, also reading version {@code oldVersion} into {@code oldRecord} and upgrading it: a model
     * that bumps its version keeps restoring files written before the bump.
     */
    @SuppressWarnings("unchecked")
    public <R extends Record> ModelStateSchema<S> readingAlso(int oldVersion, Class<R> oldRecord, Function<? super R, ? extends S> upgrade) {
        List<Older<S>> more = new ArrayList<>(older);
        more.add(new Older<>(oldVersion, oldRecord, o -> upgrade.apply((R) o)));
        return new ModelStateSchema<>(type, version, recordClass, more);
    }

    /** How a state of {@code v}, older than this schema's, is read, if this bus still reads it. */
    public Optional<Older<S>> olderVersion(int v) {
        return older.stream().filter(o -> o.version() == v).findFirst();
    }

    /** What this bus reads of this type, for a refusal: "virtio-net state version 2 (and 1)". */
    public String readable() {
        if (older.isEmpty()) return toString();
        return this + " (and " + older.stream().map(o -> String.valueOf(o.version()))
                .collect(java.util.stream.Collectors.joining(", ")) + ")";
    }

    @Override
    public String toString() {
        return type + " state version " + version;
    }
}
