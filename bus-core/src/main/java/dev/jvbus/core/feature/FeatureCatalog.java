package dev.jvbus.core.feature;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The named feature bits a device model can offer. Translates between wire masks and names, so
 * operators and logs speak names while the wire carries numbers.
 *
 * <p>It also holds what the features require of each other ({@link FeatureRequirement}, declared with
 * {@link #requiring}): the one place the bus learns that, say, VIRTIO_NET_F_CTRL_RX means nothing without
 * VIRTIO_NET_F_CTRL_VQ. An offer then never has a feature without what it requires ({@link #withRequirementsMet}),
 * and a driver that acks one without it is refused at FEATURES_OK ({@link #unmet}).
 */
public final class FeatureCatalog {
    private final FeatureBit[] byBit = new FeatureBit[64];
    private final Map<String, FeatureBit> byName = new LinkedHashMap<>();
    private final long mask;
    private final List<FeatureRequirement> requirements;

    private FeatureCatalog(List<FeatureBit> bits) {
        this(bits, List.of());
    }

    private FeatureCatalog(List<FeatureBit> bits, List<FeatureRequirement> requirements) {
        long m = 0;
        for (FeatureBit b : bits) {
            if (byBit[b.bit()] != null)
                throw new IllegalArgumentException("feature bit " + b.bit() + " named twice: " + byBit[b.bit()].name() + ", " + b.name());
            if (byName.putIfAbsent(b.name(), b) != null)
                throw new IllegalArgumentException("feature name used twice: " + b.name());
            byBit[b.bit()] = b;
            m |= b.mask();
        }
        this.mask = m;
        // A requirement of a feature this catalog does not have says nothing about it (a model may declare the
        // spec's whole list, offered or not); one whose required features are missing leaves that feature unmet.
        List<FeatureRequirement> mine = new ArrayList<>();
        for (FeatureRequirement r : requirements) {
            FeatureBit own = byBit[r.feature().bit()];
            if (own != null) mine.add(own.equals(r.feature()) ? r : new FeatureRequirement(own, r.anyOf()));
        }
        this.requirements = List.copyOf(mine);
    }

    /** This catalog with {@code rules} added to what its features require of each other. */
    public FeatureCatalog requiring(FeatureRequirement... rules) {
        return requiring(List.of(rules));
    }

    public FeatureCatalog requiring(Collection<FeatureRequirement> rules) {
        List<FeatureRequirement> all = new ArrayList<>(requirements);
        all.addAll(rules);
        return new FeatureCatalog(bits(), all);
    }

    /** What this catalog's features require (only rules for features it has). */
    public List<FeatureRequirement> requirements() {
        return requirements;
    }

    /**
     * The largest part of {@code bits} in which every feature has what it requires: a feature whose
     * requirement is missing is taken out, and so on for the features that required it in turn.
     */
    public long withRequirementsMet(long bits) {
        long b = bits;
        for (boolean changed = true; changed; ) {
            changed = false;
            for (FeatureRequirement r : requirements) {
                if (r.brokenBy(b)) {
                    b &= ~r.feature().mask();
                    changed = true;
                }
            }
        }
        return b;
    }

    /** The features {@link #withRequirementsMet} takes out of {@code bits}, each with the requirement it lacked, in the order they fall. */
    public List<FeatureWithdrawal> withdrawals(long bits) {
        List<FeatureWithdrawal> out = new ArrayList<>();
        long b = bits;
        for (boolean changed = true; changed; ) {
            changed = false;
            for (FeatureRequirement r : requirements) {
                if (r.brokenBy(b)) {
                    out.add(new FeatureWithdrawal(r.feature(), r));
                    b &= ~r.feature().mask();
                    changed = true;
                }
            }
        }
        return out;
    }

    /** The requirements {@code bits} breaks: a feature in it without any of the features it requires. */
    public List<FeatureRequirement> unmet(long bits) {
        List<FeatureRequirement> out = new ArrayList<>();
        for (FeatureRequirement r : requirements) if (r.brokenBy(bits)) out.add(r);
        return out;
    }

    /**
     * This catalog without the features in {@code withheld} and without those that required them (a model
     * narrowed to what an older bus offered): its requirements stay, for the features that stay.
     */
    public FeatureCatalog without(long withheld) {
        long kept = withRequirementsMet(mask & ~withheld);
        List<FeatureBit> bits = new ArrayList<>();
        for (FeatureBit b : bits()) if (b.in(kept)) bits.add(b);
        return new FeatureCatalog(bits, requirements);
    }

    public static FeatureCatalog of(FeatureBit... bits) {
        return new FeatureCatalog(List.of(bits));
    }

    public static FeatureCatalog of(Collection<FeatureBit> bits) {
        return new FeatureCatalog(List.copyOf(bits));
    }

    /** Every bit in this catalog, as a wire mask. */
    public long mask() {
        return mask;
    }

    public List<FeatureBit> bits() {
        List<FeatureBit> out = new ArrayList<>();
        for (FeatureBit b : byBit) if (b != null) out.add(b);
        return out;
    }

    public Optional<FeatureBit> byName(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    public Optional<FeatureBit> byBit(int bit) {
        return bit < 0 || bit > 63 ? Optional.empty() : Optional.ofNullable(byBit[bit]);
    }

    /** Names of the bits set in {@code bits}; bits this catalog does not know appear as {@code bit<N>}. */
    public List<String> names(long bits) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            if ((bits & (1L << i)) == 0) continue;
            out.add(byBit[i] != null ? byBit[i].name() : "bit" + i);
        }
        return out;
    }

    /**
     * The mask for a set of names (as an operator types them).
     *
     * @throws IllegalArgumentException naming the first unknown feature and the known ones
     */
    public long maskOf(Collection<String> names) {
        long m = 0;
        for (String n : names) {
            FeatureBit b = byName.get(n.trim());
            if (b == null)
                throw new IllegalArgumentException("unknown feature '" + n + "'; this model knows " + byName.keySet());
            m |= b.mask();
        }
        return m;
    }
}
