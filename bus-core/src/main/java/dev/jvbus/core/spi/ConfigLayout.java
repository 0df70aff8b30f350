package dev.jvbus.core.spi;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * A model's config space: named fields at fixed offsets (virtio-net: mac, status, max_virtqueue_pairs, mtu).
 * Fields may not overlap; the space is as large as its last field.
 */
public record ConfigLayout(List<ConfigField> fields) {
    public ConfigLayout {
        fields = fields.stream().sorted(Comparator.comparingInt(ConfigField::offset)).toList();
        for (int i = 1; i < fields.size(); i++)
            if (fields.get(i).offset() < fields.get(i - 1).end())
                throw new IllegalArgumentException("config fields overlap: " + fields.get(i - 1).name() + ", " + fields.get(i).name());
    }

    public static ConfigLayout of(ConfigField... fields) {
        return new ConfigLayout(List.of(fields));
    }

    public static ConfigLayout empty() {
        return new ConfigLayout(List.of());
    }

    public int size() {
        return fields.isEmpty() ? 0 : fields.getLast().end();
    }

    public Optional<ConfigField> field(String name) {
        return fields.stream().filter(f -> f.name().equals(name)).findFirst();
    }

    /**
     * True if every byte of {@code [offset, offset+length)} belongs to a driver-writable field. Both
     * numbers come from the driver: the range is checked against the space as {@code length > size - offset}
     * (never {@code offset + length}, which wraps negative for an offset near 2^31 and used to let the
     * loop below run zero times and answer true).
     */
    public boolean driverMayWrite(int offset, int length) {
        if (offset < 0 || length <= 0 || length > size() - offset) return false;
        for (int b = offset; b < offset + length; b++) {
            final int at = b;
            if (fields.stream().noneMatch(f -> f.driverWritable() && at >= f.offset() && at < f.end())) return false;
        }
        return true;
    }
}
