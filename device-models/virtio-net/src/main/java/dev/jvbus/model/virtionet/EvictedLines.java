package dev.jvbus.model.virtionet;

import java.util.Map;

/**
 * What a virtio-net tx worker evicts from our caches after a batch ({@link EvictChoice} says why), cheapest first; also
 * the operator's {@value #PARAM} parameter, which fixes one of them ({@code off}, {@code descriptors}, {@code frames})
 * where the default, {@code auto}, measures.
 */
public enum EvictedLines {
    NONE("off"),
    /** The descriptor lines of the buffers the batch took. */
    DESCRIPTORS("descriptors"),
    /** Those, and the line of each frame's start: the one a driver that fills the buffer again writes first. */
    FRAMES("frames");

    /** The device parameter. */
    public static final String PARAM = "evict";

    private final String param;

    EvictedLines(String param) { this.param = param; }

    /** The {@value #PARAM} parameter of {@code params}, checked (the one place): null for {@code auto}, the default. */
    public static EvictedLines fixedBy(Map<String, String> params) {
        String v = params.get(PARAM);
        if (v == null || v.equals("auto")) return null;
        for (EvictedLines l : values()) if (l.param.equals(v)) return l;
        throw new IllegalArgumentException("parameter '" + PARAM + "' must be 'auto', 'off', 'descriptors' or 'frames': '" + v + "'");
    }

    /** Its value of the {@value #PARAM} parameter. */
    @Override public String toString() { return param; }
}
