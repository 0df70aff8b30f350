package dev.jvbus.core.feature;

import java.util.List;
import java.util.Objects;

/**
 * One feature needs another: {@code feature} means something only if at least one of {@code anyOf} is
 * in the same set (virtio 1.x 5.1.3.1, "Feature bit requirements": VIRTIO_NET_F_CTRL_RX requires
 * VIRTIO_NET_F_CTRL_VQ; VIRTIO_NET_F_HOST_ECN requires HOST_TSO4 or HOST_TSO6). A feature that needs
 * several features has one requirement per feature it needs. A model declares its requirements with its
 * {@link FeatureCatalog}; the bus then never offers a feature without what it needs, and refuses a driver
 * that acks one without it.
 */
public record FeatureRequirement(FeatureBit feature, List<FeatureBit> anyOf) {
    public FeatureRequirement {
        Objects.requireNonNull(feature, "feature");
        anyOf = List.copyOf(anyOf);
        if (anyOf.isEmpty()) throw new IllegalArgumentException(feature.name() + " requires nothing: give at least one feature");
        if (anyOf.contains(feature)) throw new IllegalArgumentException(feature.name() + " cannot require itself");
    }

    /** {@code feature} requires {@code required}. */
    public static FeatureRequirement of(FeatureBit feature, FeatureBit required) {
        return new FeatureRequirement(feature, List.of(required));
    }

    /** {@code feature} requires at least one of {@code alternatives}. */
    public static FeatureRequirement anyOf(FeatureBit feature, FeatureBit... alternatives) {
        return new FeatureRequirement(feature, List.of(alternatives));
    }

    /** The wire mask of the features any one of which meets this requirement. */
    public long anyOfMask() {
        long m = 0;
        for (FeatureBit b : anyOf) m |= b.mask();
        return m;
    }

    /** Whether {@code bits} has {@link #feature} without any of {@link #anyOf}. */
    public boolean brokenBy(long bits) {
        return feature.in(bits) && (bits & anyOfMask()) == 0;
    }

    /** "VIRTIO_NET_F_HOST_TSO4 or VIRTIO_NET_F_HOST_TSO6". */
    public String requiredNames() {
        return String.join(" or ", anyOf.stream().map(FeatureBit::name).toList());
    }

    @Override
    public String toString() {
        return feature.name() + " requires " + requiredNames();
    }
}
