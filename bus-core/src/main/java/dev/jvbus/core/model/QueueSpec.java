package dev.jvbus.core.model;

import dev.jvbus.core.state.RingKind;
import java.util.Objects;

/**
 * One queue a model declares: its name (for operators and metrics), its ring layout, the largest
 * size the driver may choose (the virtio "queue_num_max"), and whether the device can run without
 * it (virtio-net's control queue, venet's event queue are optional; a connector such as vhost-user,
 * which starts rings one by one, waits for every required one before starting the device).
 */
public record QueueSpec(String name, RingKind kind, int maxSize, boolean required) {
    public static final int SPLIT_MAX = 32768;

    public QueueSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        if (maxSize < 1 || maxSize > SPLIT_MAX || Integer.bitCount(maxSize) != 1)
            throw new IllegalArgumentException("queue '" + name + "' max size must be a power of two in 1.." + SPLIT_MAX + ": " + maxSize);
    }

    /** A required queue. */
    public QueueSpec(String name, RingKind kind, int maxSize) {
        this(name, kind, maxSize, true);
    }

    /** An optional queue (the device runs without it). */
    public static QueueSpec optional(String name, RingKind kind, int maxSize) {
        return new QueueSpec(name, kind, maxSize, false);
    }
}
