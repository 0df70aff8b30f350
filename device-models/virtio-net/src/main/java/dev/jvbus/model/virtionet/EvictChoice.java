package dev.jvbus.model.virtionet;

/**
 * Which lines a tx worker evicts after reading them ({@link dev.jvbus.core.memory.CacheLines}): none, the descriptor
 * lines of the buffers it took, or those and each frame's first line; decided by measuring the queue's throughput.
 *
 * <p>The driver rewrites each descriptor when it makes the entry available again, and (testpmd, a guest reusing a
 * buffer) the frame's first line when it fills the buffer again. If our core still holds such a line, the driver's
 * store must first take our copy back, and with the two cores far apart that is a large part of the front-end's time
 * per packet. Evicting the lines after reading them spares it that; each flush costs us a little. Whether that pays
 * depends on where the host put the two vCPUs, which changes within minutes on these VMs. With testpmd's front-end at
 * 64 B (benchmarks/README.md, sessions 22, 24 and 31): the descriptor lines were worth about 2 % where the front-end
 * set the pace, and lost where our worker did; the frame lines too made the front-end 1.3x faster in the state where
 * it was slowest (10.7 Mpps), and cost 19 % in the one where it made 16 Mpps, where our worker's flushes made it the
 * limit. So the worker probes, as {@link ReadAheadChoice} does, but by the queue's <em>throughput</em> (frames per
 * wall-clock nanosecond, waits included), not by our time per frame: the gain is the front-end's, seen only in how
 * fast buffers arrive.
 *
 * <p>The levels are ordered by cost ({@link EvictedLines}), and a probe compares two neighbours: {@link #PROBES} windows of at
 * least {@link #WINDOW_NS} each, the higher level first, in the order hi, lo, lo, hi, hi, lo, lo, hi (a steady drift
 * then adds the same to both). The higher level is kept only if its rate beats the lower's by {@link #MARGIN_PERCENT}
 * %, and only if both saw {@link #MIN_FRAMES} frames: a light load has nothing to win. The choice holds for
 * {@link #HOLD_BATCHES} batches; the next probe then climbs from a level just chosen over the one below it, and looks
 * down from one that held against the one above it. So a worker settled between two neighbours checks both in turn,
 * and one at either end checks its one neighbour again. A probe that keeps the level the worker had doubles the
 * hold, up to {@link #MAX_HOLD_BATCHES}; one that changes it starts again from the shortest. A probe's windows at the
 * losing level cost what that level costs (the frame lines 19 % at 16 Mpps), so a settled worker probes less, and
 * still sees the host move its cores within a second. Timed only while probing. One worker's thread only.
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
    /** How much faster the queue must run with the higher level for it to be kept: a flush that buys nothing is a cost. */
    static final int MARGIN_PERCENT = 1;
    /** Frames each level must have seen over a probe for the probe to choose the higher one. */
    static final long MIN_FRAMES = 10_000;

    private EvictedLines low = EvictedLines.NONE;           // the probe compares low and the level above it
    private EvictedLines level = EvictedLines.DESCRIPTORS;  // what the coming batch evicts
    private final boolean fixed;                            // by the operator: never probes
    private boolean probing = true;
    private int window;                                     // windows done in this probe (0 .. 2 * PROBES)
    private long windowStart = -1, framesAtStart;
    private int held;                                       // batches since the choice
    private int hold = HOLD_BATCHES;                        // batches the choice holds
    private EvictedLines before;                            // the level held before this probe; null before the first
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
        if (level != low) {
            nsHigh += ns;
            framesHigh += f;
        } else {
            nsLow += ns;
            framesLow += f;
        }
        windowStart = now;
        framesAtStart = frames;
        EvictedLines high = LEVELS[low.ordinal() + 1];
        if (++window < 2 * PROBES) {
            level = (window & 3) == 0 || (window & 3) == 3 ? high : low;   // hi, lo, lo, hi, ...
            return;
        }
        // frames per ns at the higher level > (1 + margin) x at the lower (in doubles: a window that spanned a long
        // sleep would overflow the cross-multiplied longs; once per probe)
        boolean up = framesHigh >= MIN_FRAMES && framesLow >= MIN_FRAMES
                && (double) framesHigh / nsHigh > (double) framesLow / nsLow * (1 + MARGIN_PERCENT / 100.0);
        level = up ? high : low;
        hold = level == before ? Math.min(hold << 1, MAX_HOLD_BATCHES) : HOLD_BATCHES;
        before = level;
        chosen[level.ordinal()]++;
        probesDone++;
        if (up && high.ordinal() + 1 < LEVELS.length) low = high;   // climb: is the next one up better still?
        else if (!up && low.ordinal() > 0) low = LEVELS[low.ordinal() - 1];   // held: is the one below as good?
        probing = false;
        held = 0;
    }

    /** A batch between probes; after the hold's batches the next probe starts, at the higher of its two levels. */
    void heldBatch() {
        if (fixed || ++held < hold) return;
        probing = true;
        level = LEVELS[low.ordinal() + 1];
        window = 0;
        windowStart = -1;
        nsHigh = framesHigh = nsLow = framesLow = 0;
    }

    int probesDone() { return probesDone; }

    /** How many probes chose {@code lines}. */
    int timesChosen(EvictedLines lines) { return chosen[lines.ordinal()]; }
}
