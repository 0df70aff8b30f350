package dev.jvbus.core.state;

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
public record ModelStateSchema<S extends Record & ModelState>(String type, int version, Class<S> recordClass) {

    /** The schema of a model that keeps nothing beyond its config space and queues. */
    public static final ModelStateSchema<NoModelState> NONE = new ModelStateSchema<>("none", 1, NoModelState.class);

    public ModelStateSchema {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(recordClass, "recordClass");
        if (type.isBlank()) throw new IllegalArgumentException("a model state's type name must not be blank");
        if (version < 1) throw new IllegalArgumentException("model state version must be >= 1: " + version);
    }

    @Override
    public String toString() {
        return type + " state version " + version;
    }
}
