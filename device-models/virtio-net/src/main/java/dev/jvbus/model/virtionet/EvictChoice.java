package dev.jvbus.model.virtionet;

/**
 * Whether a tx worker evicts the descriptor lines of the buffers it took ({@link dev.jvbus.core.memory.CacheLines}),
 * decided by measuring the queue's throughput both ways.
 *
 * <p>The driver rewrites each descriptor when it makes the entry available again; if our core still holds the line,
 * its store must first take our copy back, and with the two cores far apart that is a large part of the front-end's
 * time per packet. Evicting the lines after reading them spares it that; each flush costs us a little. Whether that
 * pays depends on where the host put the two vCPUs, which changes within minutes on these VMs: with testpmd's
 * front-end at 64 B it was worth about 2 % where the front-end set the pace, and it lost where our worker did
 * (benchmarks/README.md, sessions 22 and 24). So the worker probes, as {@link ReadAheadChoice} does, but by the
 * queue's <em>throughput</em> (frames per wall-clock nanosecond, waits included), not by our time per frame: the gain
 * is the front-end's, seen only in how fast buffers arrive.
 *
 * <p>A probe is {@link #PROBES} windows of at least {@link #WINDOW_NS} in each mode, in the order on, off, off, on,
 * on, off, off, on (a steady drift then adds the same to both). Eviction is kept only if its rate beats the other by
 * {@link #MARGIN_PERCENT} %, and only if both modes saw {@link #MIN_FRAMES} frames: a light load has nothing to win.
 * The choice holds for {@link #HOLD_BATCHES} batches, then the next probe starts. Timed only while probing.
 * One worker's thread only.
 */
final class EvictChoice {
    /** A probe window's least length (about 30,000 frames at 15 Mpps). */
    static final long WINDOW_NS = 2_000_000;
    /** Windows per mode in one probe. */
    static final int PROBES = 4;
    /** Batches the choice holds between probes (about 100 ms at 64 B and 15 Mpps, a batch every 3 us): probing is 1/7 of the time. */
    static final int HOLD_BATCHES = 1 << 15;
    /** How much faster the queue must run with eviction for it to be kept: a flush that buys nothing is a cost. */
    static final int MARGIN_PERCENT = 1;
    /** Frames each mode must have seen over a probe for the probe to choose eviction. */
    static final long MIN_FRAMES = 10_000;

    private boolean on = true;
    private boolean probing = true;
    private int window;                       // windows done in this probe (0 .. 2 * PROBES)
    private long windowStart = -1, framesAtStart;
    private int held;                         // batches since the choice
    private long nsOn, framesOn, nsOff, framesOff;
    private int probesDone, onChosen;         // for tests and the bench's report

    /** Evict in the coming batch? */
    boolean on() { return on; }

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
        if (f == 0) {   // the queue was idle: a window without frames says nothing of either mode; start it again
            windowStart = now;
            return;
        }
        if (on) {
            nsOn += ns;
            framesOn += f;
        } else {
            nsOff += ns;
            framesOff += f;
        }
        windowStart = now;
        framesAtStart = frames;
        if (++window < 2 * PROBES) {
            on = (window & 3) == 0 || (window & 3) == 3;   // on, off, off, on, ...
            return;
        }
        // frames per ns with eviction > (1 + margin) x without (in doubles: a window that spanned a long sleep would
        // overflow the cross-multiplied longs; once per probe)
        on = framesOn >= MIN_FRAMES && framesOff >= MIN_FRAMES
                && (double) framesOn / nsOn > (double) framesOff / nsOff * (1 + MARGIN_PERCENT / 100.0);
        if (on) onChosen++;
        probesDone++;
        probing = false;
        held = 0;
    }

    /** A batch between probes; after {@link #HOLD_BATCHES} of them the next probe starts, eviction on. */
    void heldBatch() {
        if (++held < HOLD_BATCHES) return;
        probing = true;
        on = true;
        window = 0;
        windowStart = -1;
        nsOn = framesOn = nsOff = framesOff = 0;
    }

    int probesDone() { return probesDone; }

    int onChosen() { return onChosen; }
}
