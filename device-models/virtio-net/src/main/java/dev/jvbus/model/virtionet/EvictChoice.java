package dev.jvbus.model.virtionet;

/**
 * Which lines a tx worker evicts after reading them ({@link dev.jvbus.core.memory.CacheLines}): none, the descriptor
 * lines of the buffers it took, or those and the first line of half its frames or of each ({@link EvictedLines});
 * decided by measuring the queue's throughput.
 *
 * <p>The driver rewrites each descriptor when it makes the entry available again, and (testpmd, a guest reusing a
 * buffer) the frame's first line when it fills the buffer again. If our core still holds such a line, the driver's
 * store must first take our copy back, and with the two cores far apart that is a large part of the front-end's time
 * per packet. Evicting the lines after reading them spares it that; each flush costs us a little. Whether that pays
 * depends on where the host put the two vCPUs, which changes within minutes on these VMs. With testpmd's front-end at
 * 64 B (benchmarks/README.md, sessions 22, 24 and 31): the descriptor lines were worth about 2 % where the front-end
 * set the pace, and lost where our worker did; the frame lines too made the front-end 1.3x faster in the state where
 * it was slowest (10.7 Mpps), and cost 19 % in the one where it made 16 Mpps, where our worker's flushes made it the
 * limit; in that state the frame lines of half the frames made it 6 % faster at no cost to our worker (session 32).
 * So the worker probes, as {@link ReadAheadChoice} does, but by the queue's <em>throughput</em> (frames per
 * wall-clock nanosecond, waits included), not by our time per frame: the gain is the front-end's, seen only in how
 * fast buffers arrive.
 *
 * <p>The levels are ordered by cost ({@link EvictedLines}). A probe compares the level the worker holds with one other:
 * {@link #PROBES} windows of at least {@link #WINDOW_NS} each, the costlier level first, in the order hi, lo, lo, hi, hi,
 * lo, lo, hi (a steady drift then adds the same to both). The costlier level is kept only if its rate beats the
 * cheaper's by {@link #MARGIN_PERCENT} %, and only if both saw {@link #MIN_FRAMES} frames: a light load has nothing to
 * win. The choice holds for {@link #HOLD_BATCHES} batches. The level a probe measures against is the nearest first, in
 * the direction the worker last moved (a level just climbed to checks the one above it next, one just come down to
 * the one below), then the others in turn, nearest first: the rates are not monotonic in the level, so a level that
 * loses to its neighbour may still win beyond it (session 32: where the frame lines of all frames made the front-end
 * 1.3x faster, those of half of them made it 1 % faster). A probe that keeps the level doubles the hold, up to
 * {@link #MAX_HOLD_BATCHES}; one that changes it starts again from the shortest. A probe's windows at the losing level
 * cost what that level costs (the frame lines 14-19 % at 16 Mpps), so a settled worker probes less, and still sees the
 * host move its cores within a second or two. Timed only while probing. One worker's thread only.
 */
final class EvictChoice {
    private static final EvictedLines[] LEVELS = EvictedLines.values();

    /** A probe window's least length (about 30,000 frames at 15 Mpps). */
    static final long WINDOW_NS = 2_000_000;
    /** Windows per level in one probe. */
    static final int PROBES = 4;
    /** Batches the choice holds between probes (about 100 ms at 64 B and 15 Mpps, a batch every 3 us): probing is 1/7 of the time. */
    static final int HOLD_BATCHES = 1 << 15;
    /** The longest hold, after probes that kept the level (about 0.9 s at 64 B and 15 Mpps). */
    static final int MAX_HOLD_BATCHES = HOLD_BATCHES << 3;
    /** How much faster the queue must run with the costlier level for it to be kept: a flush that buys nothing is a cost. */
    static final int MARGIN_PERCENT = 1;
    /** Frames each level must have seen over a probe for the probe to choose the costlier one. */
    static final long MIN_FRAMES = 10_000;

    private EvictedLines held = EvictedLines.NONE;          // the level between probes; the first probe measures it
    private EvictedLines against = EvictedLines.DESCRIPTORS; // what the probe measures it against
    private EvictedLines level = EvictedLines.DESCRIPTORS;  // what the coming batch evicts
    private final boolean fixed;                            // by the operator: never probes
    private boolean probing = true;
    private boolean cameDown;                               // the last change was to a cheaper level
    private int kept;                                       // probes that kept the level since it last changed
    private int window;                                     // windows done in this probe (0 .. 2 * PROBES)
    private long windowStart = -1, framesAtStart;
    private int heldBatches;                                // batches since the choice
    private int hold = HOLD_BATCHES;                        // batches the choice holds
    private long nsHigh, framesHigh, nsLow, framesLow;
    private int probesDone;
    private final int[] chosen = new int[LEVELS.length];    // for tests and the bench's report

    /** Measures. */
    EvictChoice() {
        this(null);
    }

    /** {@code fixed}'s level for good, or measured where it is null (the {@value EvictedLines#PARAM} parameter's {@code auto}). */
    EvictChoice(EvictedLines fixed) {
        this.fixed = fixed != null;
        if (fixed == null) return;
        level = fixed;
        probing = false;
    }

    /** What the coming batch evicts. */
    EvictedLines level() { return level; }

    /** True while a probe runs: the worker calls {@link #at} at each batch's start; otherwise {@link #heldBatch}. */
    boolean timing() { return probing; }

    /** At a batch's start while {@link #timing()}: the time, and the buffers this queue has taken so far. */
    void at(long now, long frames) {
        if (windowStart < 0) {
            windowStart = now;
            framesAtStart = frames;
            return;
        }
        long ns = now - windowStart;
        if (ns < WINDOW_NS) return;
        long f = frames - framesAtStart;
        if (f == 0) {   // the queue was idle: a window without frames says nothing of either level; start it again
            windowStart = now;
            return;
        }
        EvictedLines high = costlier(held, against), low = high == held ? against : held;
        if (level == high) {
            nsHigh += ns;
            framesHigh += f;
        } else {
            nsLow += ns;
            framesLow += f;
        }
        windowStart = now;
        framesAtStart = frames;
        if (++window < 2 * PROBES) {
            level = (window & 3) == 0 || (window & 3) == 3 ? high : low;   // hi, lo, lo, hi, ...
            return;
        }
        // frames per ns at the costlier level > (1 + margin) x at the cheaper (in doubles: a window that spanned a long
        // sleep would overflow the cross-multiplied longs; once per probe)
        boolean up = framesHigh >= MIN_FRAMES && framesLow >= MIN_FRAMES
                && (double) framesHigh / nsHigh > (double) framesLow / nsLow * (1 + MARGIN_PERCENT / 100.0);
        level = up ? high : low;
        if (level == held && probesDone > 0) {   // the first probe chooses; it keeps nothing
            hold = Math.min(hold << 1, MAX_HOLD_BATCHES);
            kept++;
        } else {
            hold = HOLD_BATCHES;
            cameDown = level.ordinal() < held.ordinal();
            kept = 0;
        }
        held = level;
        against = next(held, cameDown, kept);
        chosen[level.ordinal()]++;
        probesDone++;
        probing = false;
        heldBatches = 0;
    }

    /** A batch between probes; after the hold's batches the next probe starts, at the costlier of its two levels. */
    void heldBatch() {
        if (fixed || ++heldBatches < hold) return;
        probing = true;
        level = costlier(held, against);
        window = 0;
        windowStart = -1;
        nsHigh = framesHigh = nsLow = framesLow = 0;
    }

    /**
     * The level the {@code kept}-th probe since {@code held} was chosen measures it against: the others by distance,
     * nearest first, and at each distance the one in the direction of the last change first ({@code cameDown}).
     */
    static EvictedLines next(EvictedLines held, boolean cameDown, int kept) {
        EvictedLines[] order = ORDER[cameDown ? 1 : 0][held.ordinal()];
        return order[kept % order.length];
    }

    /** {@link #next}'s orders, by [cameDown][held]. */
    private static final EvictedLines[][][] ORDER = new EvictedLines[2][LEVELS.length][];

    static {
        for (int down = 0; down < 2; down++)
            for (EvictedLines held : LEVELS) {
                EvictedLines[] order = new EvictedLines[LEVELS.length - 1];
                int n = 0;
                for (int d = 1; n < order.length; d++) {
                    int toward = held.ordinal() + (down == 1 ? -d : d), away = held.ordinal() + (down == 1 ? d : -d);
                    if (toward >= 0 && toward < LEVELS.length) order[n++] = LEVELS[toward];
                    if (away >= 0 && away < LEVELS.length) order[n++] = LEVELS[away];
                }
                ORDER[down][held.ordinal()] = order;
            }
    }

    private static EvictedLines costlier(EvictedLines a, EvictedLines b) { return a.ordinal() > b.ordinal() ? a : b; }

    int probesDone() { return probesDone; }

    /** How many probes chose {@code lines}. */
    int timesChosen(EvictedLines lines) { return chosen[lines.ordinal()]; }
}
