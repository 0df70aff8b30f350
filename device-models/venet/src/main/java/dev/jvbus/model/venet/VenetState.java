package dev.jvbus.model.venet;

import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.ModelStateSchema;
import dev.jvbus.net.MacAddress;
import java.util.List;
import java.util.Objects;

/**
 * What a venet device keeps beyond its config space and queues, saved with it.
 *
 * <p>ANY CHANGE to the fields or their meaning bumps {@link #SCHEMA}'s version.
 *
 * @param mac               the device's address, as {@code aa:bb:cc:dd:ee:ff}
 * @param linkUp            the link state the driver was last told
 * @param caps              the capabilities the driver was granted (venet's feature bits)
 * @param pendingLinkEvents link events not yet delivered on the event queue, oldest first (true = up)
 */
public record VenetState(String mac, boolean linkUp, long caps, List<Boolean> pendingLinkEvents) implements ModelState {
    public static final ModelStateSchema<VenetState> SCHEMA = new ModelStateSchema<>(VenetModel.TYPE, 1, VenetState.class);
    /** Link events a device holds for the event queue before it drops the oldest. */
    static final int MAX_PENDING_LINK_EVENTS = 16;

    /** @throws IllegalArgumentException naming the field whose value no venet device could have saved */
    public VenetState {
        Objects.requireNonNull(mac, "mac");
        try {
            MacAddress.parse(mac);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("mac: " + e.getMessage(), e);
        }
        if ((caps & ~VenetModel.FEATURES_MASK) != 0)
            throw new IllegalArgumentException("caps 0x" + Long.toHexString(caps) + " are not venet's");
        pendingLinkEvents = List.copyOf(Objects.requireNonNull(pendingLinkEvents, "pendingLinkEvents"));
        if (pendingLinkEvents.size() > MAX_PENDING_LINK_EVENTS)
            throw new IllegalArgumentException("pendingLinkEvents holds " + pendingLinkEvents.size() + ", a device holds at most "
                    + MAX_PENDING_LINK_EVENTS);
    }

    @Override
    public ModelStateSchema<VenetState> schema() {
        return SCHEMA;
    }
}
