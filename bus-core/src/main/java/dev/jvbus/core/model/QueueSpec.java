package dev.jvbus.core.model;

import dev.jvbus.core.state.RingKind;
import java.util.Objects;

/**
 * One queue a model declares: its name (for operators and metrics), its ring layout, and the
 * largest size the driver may choose (the virtio "queue_num_max").
 */
public record QueueSpec(String name, RingKind kind, int maxSize) {
    public static final int SPLIT_MAX = 32768;

    public QueueSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        if (maxSize < 1 || maxSize > SPLIT_MAX || Integer.bitCount(maxSize) != 1)
            throw new IllegalArgumentException("queue '" + name + "' max size must be a power of two in 1.." + SPLIT_MAX + ": " + maxSize);
    }
}
