package dev.jvbus.app.service;

import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.core.feature.FeatureCatalog;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * An operator's feature limit as names: either an allow list (only these may be offered) or a deny
 * list (everything but these), never both. The one place that turns names into the bus's mask and
 * refuses names the model does not have, listing them and the names it has.
 */
public record FeatureLimit(List<String> allow, List<String> deny) {
    public static final FeatureLimit NONE = new FeatureLimit(null, null);

    /** The mask for {@code catalog}'s model; -1 (no limit) when neither list is given. */
    public long mask(String type, FeatureCatalog catalog) {
        if (allow != null && deny != null)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "give the feature limit as \"allow\" or as \"deny\", not both",
                    Map.of("field", "limit"));
        if (allow == null && deny == null) return -1L;
        List<String> names = allow != null ? allow : deny;
        List<String> unknown = new ArrayList<>();
        long named = 0;
        for (String n : names) {
            Optional<FeatureBit> bit = resolve(catalog, n);
            if (bit.isPresent()) named |= bit.get().mask();
            else unknown.add(n);
        }
        if (!unknown.isEmpty())
            throw new OperationRefused(ProblemType.UNKNOWN_FEATURE, type + " has no feature " + String.join(", ", unknown)
                    + "; it has " + catalog.names(catalog.mask()), Map.of("field", allow != null ? "limit.allow" : "limit.deny", "features", unknown));
        return allow != null ? named : ~named;
    }

    /**
     * A feature by its full name (VIRTIO_NET_F_MRG_RXBUF) or by the short name people say
     * (MRG_RXBUF), which must match the end of exactly one of the model's names.
     */
    public static Optional<FeatureBit> resolve(FeatureCatalog catalog, String name) {
        if (name == null || name.isBlank()) return Optional.empty();
        Optional<FeatureBit> exact = catalog.byName(name);
        if (exact.isPresent()) return exact;
        List<FeatureBit> bySuffix = catalog.bits().stream().filter(b -> b.name().endsWith("_" + name)).toList();
        return bySuffix.size() == 1 ? Optional.of(bySuffix.getFirst()) : Optional.empty();
    }
}
