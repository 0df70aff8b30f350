package dev.jvbus.core.bus;

import java.util.Optional;

/**
 * What one status write of the driver does, decided by {@link DeviceStatus#next} from the current
 * status, the written value and whether the acked features lie inside the offer, and nothing else.
 * {@link Device} only carries it out: stopping or starting the data path, accepting the features.
 * Keeping the decision pure lets a table test name every (status, write) pair and its outcome.
 */
public sealed interface StatusTransition {

    /** The driver wrote 0: stop the data path and forget its setup. */
    record Reset() implements StatusTransition { }

    /** The write is refused as a whole; the status stays as it was. */
    record Refused(Rule rule, String reason) implements StatusTransition { }

    /**
     * The write is taken, in part or whole.
     *
     * @param status         the status once the device has done what the write asks
     * @param stopDataPath   the driver gave up (FAILED was added): stop the data path, keep the bits for the operator
     * @param acceptFeatures FEATURES_OK was added and the acked features lie inside the offer: accept them
     * @param startDataPath  DRIVER_OK was added: start the data path. Until it has started the status lacks
     *                       DRIVER_OK; if it cannot start, the device needs a reset instead
     * @param rest           the bits of the write beyond {@code status}, refused: {@code status} stands and the
     *                       driver is told why the rest did not
     */
    record Apply(int status, boolean stopDataPath, boolean acceptFeatures, boolean startDataPath,
                 Optional<Refused> rest) implements StatusTransition {

        /** Nothing new: the driver wrote back bits it had set (NEEDS_RESET included) or dropped NEEDS_RESET. */
        static Apply unchanged(int status) {
            return new Apply(status, false, false, false, Optional.empty());
        }
    }

    /** Why a write, or the rest of one, was refused. */
    enum Rule {
        /** A bit virtio does not define. */
        UNKNOWN_BITS,
        /** NEEDS_RESET is the device's to set. */
        NEEDS_RESET_IS_THE_DEVICES,
        /** Bits are cleared only by writing 0. */
        CLEARED_ONLY_BY_RESET,
        /** The driver set FAILED: nothing but a reset follows. */
        DRIVER_GAVE_UP,
        /** The device set NEEDS_RESET: nothing but a reset (or FAILED) follows. */
        DEVICE_NEEDS_RESET,
        /** A bit before the one it follows (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK). */
        OUT_OF_ORDER,
        /** FEATURES_OK with acked features outside the offer: FEATURES_OK stays clear (virtio 1.x 3.1.1). */
        FEATURES_NOT_OFFERED,
        /** FEATURES_OK with an acked feature that lacks a feature it requires: FEATURES_OK stays clear (the device may refuse). */
        FEATURE_REQUIREMENT_MISSING
    }
}
