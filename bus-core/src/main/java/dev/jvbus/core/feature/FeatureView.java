package dev.jvbus.core.feature;

import java.util.List;

/**
 * What an operator sees of a device's features: what the model could offer, the operator's
 * limit, what is offered to the driver, what the driver acked, and what is in force.
 */
public record FeatureView(long available, long limit, long offered, long acked, long negotiated, boolean accepted) {

    public List<String> availableNames(FeatureCatalog c) { return c.names(available); }

    public List<String> limitedNames(FeatureCatalog c) { return c.names(available & ~limit); }

    public List<String> offeredNames(FeatureCatalog c) { return c.names(offered); }

    /** The features the limit took out of the offer without naming them, and why ("X (requires Y)"). */
    public List<String> withdrawnNames(FeatureCatalog c) {
        return c.withdrawals(available & limit).stream().map(FeatureWithdrawal::toString).toList();
    }

    public List<String> negotiatedNames(FeatureCatalog c) { return c.names(negotiated); }
}
