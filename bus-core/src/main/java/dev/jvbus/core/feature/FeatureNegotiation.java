package dev.jvbus.core.feature;

/**
 * Feature negotiation for one device (virtio 1.x section 2.2 and 3.1.1):
 * offered = what the model can do AND the operator's limit; the driver acks a subset; the device
 * accepts the set at FEATURES_OK only if it lies inside the offer. On restore the saved set is
 * imposed, so a migrated guest carries on without renegotiating.
 *
 * <p>Not thread-safe on its own: {@code Device} guards it.
 */
public final class FeatureNegotiation {
    private final long available;
    private final FeatureCatalog catalog;   // what the features require of each other; null: nothing
    private long limit = -1L;        // all bits allowed until the operator says otherwise
    private long acked;
    private boolean accepted;        // FEATURES_OK was accepted (or features were imposed)
    private boolean requirementsChecked = true;   // the ack is the driver's whole set (see ackServed)

    /** Features with no requirements among them. */
    public FeatureNegotiation(long available) {
        this.available = available;
        this.catalog = null;
    }

    /** The features of {@code catalog}, with their requirements: an offer never breaks them, an ack that does is refused. */
    public FeatureNegotiation(FeatureCatalog catalog) {
        this.available = catalog.mask();
        this.catalog = catalog;
    }

    public long available() { return available; }

    public long limit() { return limit; }

    /**
     * What is offered: the model's features within the operator's limit, less those whose requirement the
     * limit took away (they would mean nothing, and a driver that checks would refuse the device).
     */
    public long offered() { return catalog == null ? available & limit : catalog.withRequirementsMet(available & limit); }

    /** The features the limit took out of the offer although it did not name them, each with the requirement it lost. */
    public java.util.List<FeatureWithdrawal> withdrawn() {
        return catalog == null ? java.util.List.of() : catalog.withdrawals(available & limit);
    }

    /**
     * The requirements the acked set breaks (empty once FEATURES_OK may be accepted as far as they go): a
     * feature acked without any of the features it requires. Not checked for a front-end's ack ({@link #ackServed}).
     */
    public java.util.List<FeatureRequirement> unmetRequirements() {
        return catalog == null || !requirementsChecked ? java.util.List.of() : catalog.unmet(acked);
    }

    public long acked() { return acked; }

    /** The features in force: the acked set once accepted, else none. */
    public long negotiated() { return accepted ? acked : 0L; }

    public boolean accepted() { return accepted; }

    public boolean has(FeatureBit bit) { return bit.in(negotiated()); }

    /** Operator's limit mask. Takes effect on the next negotiation; a driver mid-session keeps what it has. */
    public void setLimit(long limit) { this.limit = limit; }

    /** The driver writes the features it wants. Acceptance is decided at FEATURES_OK. */
    public void ack(long features) {
        if (accepted) throw new IllegalStateException("features already accepted; reset the device to renegotiate");
        this.acked = features;
        this.requirementsChecked = true;
    }

    /**
     * A front-end that serves part of the device itself acks the features it has this device serve: a part
     * of its driver's set, so the requirements among features are the front-end's to check (QEMU keeps the
     * control queue of a vhost-user net device to itself and forwards MQ and GUEST_ANNOUNCE without CTRL_VQ).
     * The ack must still lie inside the offer.
     */
    public void ackServed(long features) {
        ack(features);
        this.requirementsChecked = false;
    }

    /**
     * The FEATURES_OK check.
     *
     * @return the bits the driver acked outside the offer (0 means accepted)
     */
    public long accept() {
        long outside = acked & ~offered();
        accepted = outside == 0;
        return outside;
    }

    /**
     * Restore: put a saved negotiated set in force without asking the driver.
     *
     * @return the saved bits this device cannot offer under its current limit (0 means imposed)
     */
    public long impose(long negotiated) {
        return impose(negotiated, 0L);
    }

    /**
     * Restore of a state saved under an older offer: as {@link #impose(long)}, and the bits of {@code honoured}
     * (within the operator's limit) may be in force too although they are not offered now.
     *
     * @return the saved bits this device can neither offer nor honour under its current limit (0 means imposed)
     */
    public long impose(long negotiated, long honoured) {
        long outside = negotiated & ~(offered() | honoured & limit);
        if (outside != 0) return outside;
        acked = negotiated;
        accepted = true;
        return 0;
    }

    /** Device reset: the driver must negotiate again. The operator's limit stays. */
    public void reset() {
        requirementsChecked = true;
        acked = 0;
        accepted = false;
    }

    public FeatureView view() {
        return new FeatureView(available, limit, offered(), acked, negotiated(), accepted);
    }
}
