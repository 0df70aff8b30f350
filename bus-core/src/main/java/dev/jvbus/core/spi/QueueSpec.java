package dev.jvbus.core.spi;

import dev.jvbus.core.state.RingKind;
import java.util.Objects;

/**
 * One queue a model declares: its name (for operators and metrics), its ring layout, the largest
 * size the driver may choose (the virtio "queue_num_max"), and whether the device can run without
 * it (virtio-net's control queue, venet's event queue are optional; a connector such as vhost-user,
 * which starts rings one by one, waits for every required one before starting the device).
 *
 * <p>{@link #accepts} is the one rule for a queue size: every size a driver, a vhost-user front-end
 * or a saved state names is asked there, and the refusal reports {@link #sizeRule()}.
 */
public record QueueSpec(String name, RingKind kind, int maxSize, boolean required) {
    /** The largest queue any model may declare: the split ring's limit (virtio 1.x, 2.7), IOQ rings held to it too. */
    public static final int SPLIT_MAX = 32768;

    public QueueSpec {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        if (!powerOfTwoUpTo(maxSize, SPLIT_MAX))
            throw new IllegalArgumentException("queue '" + name + "' max size must be " + rule(SPLIT_MAX) + ": " + maxSize);
    }

    /** A required queue. */
    public QueueSpec(String name, RingKind kind, int maxSize) {
        this(name, kind, maxSize, true);
    }

    /** An optional queue (the device runs without it). */
    public static QueueSpec optional(String name, RingKind kind, int maxSize) {
        return new QueueSpec(name, kind, maxSize, false);
    }

    /**
     * This queue held to at most {@code size} descriptors (a device sized smaller than its model's
     * largest, see {@link QueueLayout#sizedBy}); a limit above {@link #maxSize} changes nothing.
     */
    public QueueSpec atMost(int size) {
        return size >= maxSize ? this : new QueueSpec(name, kind, size, required);
    }

    /**
     * Whether this queue may have {@code size} descriptors: a power of two (ring indices wrap with a
     * mask) no larger than {@link #maxSize}. Refuse otherwise, saying {@link #sizeRule()}.
     */
    public boolean accepts(int size) {
        return powerOfTwoUpTo(size, maxSize);
    }

    /** What {@link #accepts} asks, worded for an error message: "a power of two in 1..256". */
    public String sizeRule() {
        return rule(maxSize);
    }

    private static boolean powerOfTwoUpTo(int n, int max) {
        return n >= 1 && n <= max && Integer.bitCount(n) == 1;
    }

    private static String rule(int max) {
        return "a power of two in 1.." + max;
    }
}
