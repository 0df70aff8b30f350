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
 */
public final class FeatureCatalog {
    private final FeatureBit[] byBit = new FeatureBit[64];
    private final Map<String, FeatureBit> byName = new LinkedHashMap<>();
    private final long mask;

    private FeatureCatalog(List<FeatureBit> bits) {
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
