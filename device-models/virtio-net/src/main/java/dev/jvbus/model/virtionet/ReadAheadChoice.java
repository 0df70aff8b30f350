package dev.jvbus.model.virtionet;

/**
 * Whether a tx worker reads its ring ahead ({@link dev.jvbus.core.ring.virtio.SplitVirtqueue#touchAhead}), decided
 * by measuring both. The read-ahead overlaps the misses on lines the front-end's core wrote (descriptors, a frame's
 * first lines) and costs a second pass over each buffer's descriptor. Which wins depends on how far that core is:
 * on these VMs, whose two vCPUs the host moves nearer and farther within minutes, it was worth +10 % at 64 B with
 * the cores far apart (bench-switch) and almost double at 1500 B in one state (bench-vhost), and it cost 11 % at
 * 64 B with the cores near (benchmarks/README, session 12). No fixed setting is right for long.
 *
 * <p>So the worker probes: windows of {@link #PROBE_BATCHES} full batches with the read-ahead on and off, {@link #PROBES}
 * of each, in the order on, off, off, on, on, off, off, on (a drift that is steady over the probe then adds the same
 * to both sums, where on, off, on, off would charge it all to the mode that comes second); it keeps the mode with
 * the fewer nanoseconds per frame for the next {@link #HOLD_BATCHES} full batches, then probes again. Only full batches
 * count: a batch cut short by an empty ring measures the front-end, not us. Between probes nothing is timed.
 * One worker's thread only.
 */
final class ReadAheadChoice {
    /** Full batches per probe window (32 x 64 frames: about 0.1-0.2 ms at 64 B). */
    static final int PROBE_BATCHES = 32;
    /** Windows per mode in one probe. */
    static final int PROBES = 4;
    /** Full batches the choice holds between probes (about 40-80 ms at 64 B): a probe is 1/16 of the time. */
    static final int HOLD_BATCHES = 1 << 10 << 3;

    private boolean on = true;
    private boolean probing = true;
    private int window;                  // probe windows done in this probe (0 .. 2 * PROBES)
    private int batches;                 // full batches in the current window, or since the choice
    private long nsOn, framesOn, nsOff, framesOff;
    private int probesDone, offChosen;   // for tests

    /** Read ahead in the coming batch? */
    boolean on() { return on; }

    /** True while a probe runs: the worker times its full batches and reports them. */
    boolean timing() { return probing; }

    /** A full batch of {@code frames} buffers took {@code ns}; only called while {@link #timing()}. */
    void fullBatch(long ns, int frames) {
        if (on) {
            nsOn += ns;
            framesOn += frames;
        } else {
            nsOff += ns;
            framesOff += frames;
        }
        if (++batches < PROBE_BATCHES) return;
        batches = 0;
        if (++window < 2 * PROBES) {
            on = (window & 3) == 0 || (window & 3) == 3;   // on, off, off, on, ...
            return;
        }
        // ns per frame with it on <= without (cross-multiplied: no division, no float)
        on = framesOn == 0 || framesOff == 0 || nsOn * framesOff <= nsOff * framesOn;
        if (!on) offChosen++;
        probesDone++;
        probing = false;
        window = 0;
        nsOn = framesOn = nsOff = framesOff = 0;
    }

    /** A full batch between probes (not timed); the choice holds for {@link #HOLD_BATCHES} of them. */
    void heldBatch() {
        if (++batches < HOLD_BATCHES) return;
        batches = 0;
        probing = true;
        on = true;
    }

    int probesDone() { return probesDone; }

    int offChosen() { return offChosen; }
}
