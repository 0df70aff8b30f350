package dev.jvbus.core.bus;

import java.util.List;

/** FEATURES_OK (or an imposed restore) named features outside the device's offer. */
public final class FeatureNegotiationException extends DeviceException {
    private final long outside;

    public FeatureNegotiationException(DevId devid, long outside, List<String> names, String what) {
        super(devid, what + ": features not offered: " + names);
        this.outside = outside;
    }

    /** {@code message} says it all (a requirement broken, say), {@code offending} are the bits at fault. */
    public FeatureNegotiationException(DevId devid, long offending, String message) {
        super(devid, message);
        this.outside = offending;
    }

    /** The offending bits. */
    public long outside() {
        return outside;
    }
}
