package dev.jvbus.core.bus;

import dev.jvbus.core.bus.StatusTransition.Apply;
import dev.jvbus.core.bus.StatusTransition.Refused;
import dev.jvbus.core.bus.StatusTransition.Reset;
import dev.jvbus.core.bus.StatusTransition.Rule;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * virtio-style device status bits (virtio 1.x section 2.1). The driver sets them in order
 * (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK), may set FAILED at any time, and clears them
 * only by writing 0 (reset). NEEDS_RESET is the device's to set.
 */
public record DeviceStatus(int bits) {
    public static final int ACKNOWLEDGE = 1;
    public static final int DRIVER = 2;
    public static final int DRIVER_OK = 4;
    public static final int FEATURES_OK = 8;
    public static final int NEEDS_RESET = 64;
    public static final int FAILED = 128;

    static final int ALL = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | NEEDS_RESET | FAILED;

    public static final DeviceStatus RESET = new DeviceStatus(0);

    public boolean has(int bit) {
        return (bits & bit) == bit;
    }

    public boolean isLive() {
        return has(DRIVER_OK) && !has(NEEDS_RESET) && !has(FAILED);
    }

    /**
     * What the driver writing {@code written} to a device in this status does (virtio 1.x 2.1, 3.1.1).
     * Several new bits in one write are taken in the spec's order, each needing the one before it.
     * FAILED may come at any time and stops the data path; it ends the driver's session, so other new
     * bits in the same write are refused (a DRIVER_OK beside it must not start a data path the driver
     * has given up on). Once the device needs a reset, only FAILED or a reset is taken.
     *
     * @param ackedOutsideOffer the acked feature bits the device does not offer (0 when FEATURES_OK may be accepted)
     */
    public StatusTransition next(int written, long ackedOutsideOffer) {
        return next(written, ackedOutsideOffer, null);
    }

    /**
     * As {@link #next(int, long)}, and {@code unmetRequirement} (null if none) says which acked feature lacks
     * one it requires (virtio 1.x 5.1.3.1): FEATURES_OK is then refused as for features outside the offer.
     */
    public StatusTransition next(int written, long ackedOutsideOffer, String unmetRequirement) {
        if (written == 0) return new Reset();
        int unknown = written & ~ALL;
        if (unknown != 0) return new Refused(Rule.UNKNOWN_BITS, "unknown status bits 0x" + Integer.toHexString(unknown));
        // NEEDS_RESET belongs to the device: the driver writing it back is harmless, setting it is not.
        if ((written & NEEDS_RESET) != 0 && !has(NEEDS_RESET))
            return new Refused(Rule.NEEDS_RESET_IS_THE_DEVICES, "NEEDS_RESET is set by the device, not the driver");
        int driverBits = bits & ~NEEDS_RESET;
        int want = written & ~NEEDS_RESET;
        if ((driverBits & ~want) != 0)
            return new Refused(Rule.CLEARED_ONLY_BY_RESET, "status bits are cleared only by a reset (write 0)");
        int added = want & ~driverBits;
        if (added == 0) return Apply.unchanged(bits);
        if (has(FAILED)) return new Refused(Rule.DRIVER_GAVE_UP, "the driver gave up (FAILED); reset first");
        if ((added & FAILED) != 0) {
            int failed = bits | FAILED;
            added &= ~FAILED;
            Optional<Refused> rest = added == 0 ? Optional.empty()
                    : Optional.of(has(NEEDS_RESET) ? deviceNeedsReset()
                    : new Refused(Rule.DRIVER_GAVE_UP, "the driver gave up (FAILED) in this write; "
                            + new DeviceStatus(added) + " beside it is not taken; reset first"));
            return new Apply(failed, true, false, false, rest);
        }
        if (has(NEEDS_RESET)) return deviceNeedsReset();
        int now = bits;
        if ((added & ACKNOWLEDGE) != 0) now |= ACKNOWLEDGE;
        if ((added & DRIVER) != 0) {
            if ((now & ACKNOWLEDGE) == 0) return new Refused(Rule.OUT_OF_ORDER, "DRIVER before ACKNOWLEDGE");
            now |= DRIVER;
        }
        boolean accept = false;
        if ((added & FEATURES_OK) != 0) {
            if ((now & DRIVER) == 0) return new Refused(Rule.OUT_OF_ORDER, "FEATURES_OK before DRIVER");
            if (ackedOutsideOffer != 0) {
                // The earlier bits of this write stand; FEATURES_OK stays clear as the spec says. A DRIVER_OK
                // beside it could not follow anyway.
                return new Apply(now, false, false, false, Optional.of(new Refused(Rule.FEATURES_NOT_OFFERED,
                        "FEATURES_OK refused: acked features outside the offer 0x" + Long.toHexString(ackedOutsideOffer))));
            }
            if (unmetRequirement != null) {
                return new Apply(now, false, false, false, Optional.of(new Refused(Rule.FEATURE_REQUIREMENT_MISSING,
                        "FEATURES_OK refused: " + unmetRequirement)));
            }
            accept = true;
            now |= FEATURES_OK;
        }
        boolean start = false;
        if ((added & DRIVER_OK) != 0) {
            if ((now & FEATURES_OK) == 0) return new Refused(Rule.OUT_OF_ORDER, "DRIVER_OK before FEATURES_OK");
            start = true;
            now |= DRIVER_OK;
        }
        return new Apply(now, false, accept, start, Optional.empty());
    }

    /** The reason is the device's; {@link Device} adds it. */
    private static Refused deviceNeedsReset() {
        return new Refused(Rule.DEVICE_NEEDS_RESET, "device needs reset");
    }

    /**
     * Why {@code bits} is a status no device can be in, or empty if one can: the status bits a driver
     * sets form a prefix of ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK (virtio 1.x 3.1.1; {@code Device}
     * refuses a bit before the one it follows); FAILED (the driver gives up) and NEEDS_RESET (the device
     * gives up) may come on top of any of them; no other bit exists. Checked on restore, where the bits
     * come from a file rather than from transitions this bus made.
     */
    public static Optional<String> unreachable(int bits) {
        int unknown = bits & ~ALL;
        if (unknown != 0) return Optional.of("unknown status bits 0x" + Integer.toHexString(unknown));
        int driverBits = bits & (ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        for (int prefix : PREFIXES) if (driverBits == prefix) return Optional.empty();
        return Optional.of(String.join("|", names(driverBits)) + " skips a step of ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK");
    }

    private static final int[] PREFIXES = {0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER, ACKNOWLEDGE | DRIVER | FEATURES_OK,
            ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK};

    public static List<String> names(int bits) {
        List<String> out = new ArrayList<>();
        if ((bits & ACKNOWLEDGE) != 0) out.add("ACKNOWLEDGE");
        if ((bits & DRIVER) != 0) out.add("DRIVER");
        if ((bits & FEATURES_OK) != 0) out.add("FEATURES_OK");
        if ((bits & DRIVER_OK) != 0) out.add("DRIVER_OK");
        if ((bits & NEEDS_RESET) != 0) out.add("NEEDS_RESET");
        if ((bits & FAILED) != 0) out.add("FAILED");
        int unknown = bits & ~ALL;
        if (unknown != 0) out.add("0x" + Integer.toHexString(unknown));
        return out;
    }

    @Override
    public String toString() {
        return bits == 0 ? "RESET" : String.join("|", names(bits));
    }
}
