package dev.jvbus.core.bus;

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
