package dev.jvbus.core.feature;

/**
 * A feature taken out of an offer although the operator did not name it: a feature it requires was
 * limited or withheld, so it would mean nothing (and a driver that checks, as Linux's virtio-net does,
 * would refuse the whole device for offering it).
 */
public record FeatureWithdrawal(FeatureBit feature, FeatureRequirement unmet) {
    @Override
    public String toString() {
        return feature.name() + " (requires " + unmet.requiredNames() + ")";
    }
}
