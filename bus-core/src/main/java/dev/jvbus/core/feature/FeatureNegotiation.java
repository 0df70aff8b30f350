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
    private long limit = -1L;        // all bits allowed until the operator says otherwise
    private long acked;
    private boolean accepted;        // FEATURES_OK was accepted (or features were imposed)

    public FeatureNegotiation(long available) {
        this.available = available;
    }

    public long available() { return available; }

    public long limit() { return limit; }

    public long offered() { return available & limit; }

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
        long outside = negotiated & ~offered();
        if (outside != 0) return outside;
        acked = negotiated;
        accepted = true;
        return 0;
    }

    /** Device reset: the driver must negotiate again. The operator's limit stays. */
    public void reset() {
        acked = 0;
        accepted = false;
    }

    public FeatureView view() {
        return new FeatureView(available, limit, offered(), acked, negotiated(), accepted);
    }
}
