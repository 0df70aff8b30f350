package dev.jvbus.core.feature;

import java.util.Objects;

/**
 * One feature bit: a number for the wire (bit 0..63 of the 64-bit feature word that virtio and
 * vhost-user exchange) and a name for humans ({@code VIRTIO_F_VERSION_1}).
 */
public record FeatureBit(int bit, String name, String description) {
    public FeatureBit {
        if (bit < 0 || bit > 63) throw new IllegalArgumentException("feature bit out of range 0..63: " + bit);
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        if (name.isBlank()) throw new IllegalArgumentException("feature name is blank");
    }

    public long mask() {
        return 1L << bit;
    }

    public boolean in(long bits) {
        return (bits & mask()) != 0;
    }

    @Override
    public String toString() {
        return name + "(" + bit + ")";
    }
}
