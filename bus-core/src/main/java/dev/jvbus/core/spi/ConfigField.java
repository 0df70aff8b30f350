package dev.jvbus.core.spi;

import java.util.Objects;

/** One field of a model's config space: name, byte offset, width in bytes, and whether the driver may write it. */
public record ConfigField(String name, int offset, int width, boolean driverWritable) {
    public ConfigField {
        Objects.requireNonNull(name, "name");
        if (offset < 0) throw new IllegalArgumentException("config field '" + name + "' has negative offset");
        if (width < 1 || width > 4096) throw new IllegalArgumentException("config field '" + name + "' width out of range: " + width);
    }

    public int end() {
        return offset + width;
    }
}
