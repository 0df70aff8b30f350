package dev.jvbus.model.virtionet;

import java.util.Map;

/**
 * What a virtio-net tx worker evicts from our caches after a batch ({@link EvictChoice} says why), cheapest first; also
 * the operator's {@value #PARAM} parameter, which fixes one of them ({@code off}, {@code descriptors},
 * {@code half-frames}, {@code frames}) where the default, {@code auto}, measures.
 */
public enum EvictedLines {
    NONE("off", -1),
    /** The descriptor lines of the buffers the batch took. */
    DESCRIPTORS("descriptors", -1),
    /**
     * Those, and the line of the start of two frames in every four the batch took (its 1st and 2nd, 5th and 6th, ...).
     * Measured with testpmd's front-end at 64 B where it made 15 Mpps against the descriptor lines alone (benchmarks/README,
     * session 32): these made it 6 % faster, every other frame 3 %, one in four or eight -1 to +1 %, three in four and all
     * of them 3 and 9 % slower, the last because our worker's flushes then made it the limit. Why pairs beat single
     * frames we could not see (no PMU on these VMs); the choice measures it.
     */
    HALF_FRAMES("half-frames", 2),
    /** Those, and the line of each frame's start: the one a driver that fills the buffer again writes first. */
    FRAMES("frames", 0);

    /** The device parameter. */
    public static final String PARAM = "evict";

    private final String param;
    /** The bits of a frame's place in its batch that must be clear for its line to be evicted; -1: no frame lines. */
    private final int frameMask;

    EvictedLines(String param, int frameMask) {
        this.param = param;
        this.frameMask = frameMask;
    }

    /** Whether this level evicts the line of the frame at {@code place} in its batch (0 for the batch's first). */
    boolean evictsFrame(int place) { return frameMask >= 0 && (place & frameMask) == 0; }

    /** Whether it evicts any frame's line. */
    boolean evictsFrames() { return frameMask >= 0; }

    /** The {@value #PARAM} parameter of {@code params}, checked (the one place): null for {@code auto}, the default. */
    public static EvictedLines fixedBy(Map<String, String> params) {
        String v = params.get(PARAM);
        if (v == null || v.equals("auto")) return null;
        for (EvictedLines l : values()) if (l.param.equals(v)) return l;
        throw new IllegalArgumentException("parameter '" + PARAM + "' must be 'auto', 'off', 'descriptors', 'half-frames' or 'frames': '" + v + "'");
    }

    /** Its value of the {@value #PARAM} parameter. */
    @Override public String toString() { return param; }
}
