package dev.jvbus.core.bus;

/**
 * A device's address within its container: a 32-bit unsigned number. Two containers may both
 * have a device 1; a devid means nothing outside its container, which is how isolation holds.
 */
public record DevId(int value) implements Comparable<DevId> {

    /** Parses the unsigned decimal form an operator or a protocol message carries. */
    public static DevId parse(String s) {
        try {
            return new DevId(Integer.parseUnsignedInt(s.trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a devid (unsigned 32-bit number): '" + s + "'");
        }
    }

    public long unsigned() {
        return Integer.toUnsignedLong(value);
    }

    @Override
    public int compareTo(DevId o) {
        return Integer.compareUnsigned(value, o.value);
    }

    @Override
    public String toString() {
        return Integer.toUnsignedString(value);
    }
}
