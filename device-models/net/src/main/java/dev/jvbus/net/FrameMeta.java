package dev.jvbus.net;

import java.util.Objects;

/**
 * What a sender says about a frame besides its bytes, in one reusable flyweight: what the frame asks of its
 * receivers ({@link #offload()}: a partial checksum, a super-frame to segment), its place in the sender's
 * transmit order ({@link #origin()}, see {@link NetPort#origin}), and the sender's {@link SendBatch} (or none:
 * each receiver publishes the frame at once). One object per sending thread, made once and set per frame (a
 * field store or two), so a send allocates nothing; it is read only during the send it is passed to.
 *
 * <p>Why one parameter and not overloads: the switch had a send per subset of these three (four on the port,
 * two on its senders), each forwarding to the same path with the rest defaulted; a sender now says what it
 * has, and a new per-frame fact is one field here, not another overload on every path.
 */
public final class FrameMeta {
    /** A bare frame: no offload, no origin, no batch. Shared and immutable (its setters refuse). */
    public static final FrameMeta BARE = new FrameMeta(null, true);

    private final SendBatch batch;
    private final boolean frozen;
    private FrameOffload offload = FrameOffload.NONE;
    private int origin = NetPort.NO_ORIGIN;
    private boolean stays;

    /** A sender's metadata without a batch: each receiver publishes every frame at once. */
    public FrameMeta() {
        this(null, false);
    }

    /** A sender's metadata whose frames belong to {@code batch}: receivers publish at its {@link SendBatch#flush()}. */
    public FrameMeta(SendBatch batch) {
        this(Objects.requireNonNull(batch, "batch"), false);
    }

    private FrameMeta(SendBatch batch, boolean frozen) {
        this.batch = batch;
        this.frozen = frozen;
    }

    /** Sets what the next frames ask of their receivers (valid while they are sent; not copied). */
    public FrameMeta offload(FrameOffload offload) {
        if (frozen) throw new UnsupportedOperationException("FrameMeta.BARE is shared: a sender with metadata makes its own");
        this.offload = Objects.requireNonNull(offload, "offload");
        return this;
    }

    /** Sets the next frame's place in the sender's transmit order ({@link NetPort#origin}, or {@link NetPort#NO_ORIGIN}). */
    public FrameMeta origin(int origin) {
        if (frozen) throw new UnsupportedOperationException("FrameMeta.BARE is shared: a sender with metadata makes its own");
        this.origin = origin;
        return this;
    }

    /**
     * Whether this frame's bytes stay where they are, unchanged, until the sender's batch is flushed
     * ({@link SendBatch#flush()}): a frame in the sender's own ring buffer, which its driver gets back only after the
     * flush, stays; one in a buffer the sender reuses for its next frame does not. A receiver may then copy a frame
     * that stays at the end of the sender's run to it instead of at once ({@link NetPort#deliverStaying}).
     * Only for a sender with a batch: a frame sent without one is flushed at once anyway.
     */
    public FrameMeta stays(boolean stays) {
        if (frozen) throw new UnsupportedOperationException("FrameMeta.BARE is shared: a sender with metadata makes its own");
        this.stays = stays && batch != null;
        return this;
    }

    public boolean stays() { return stays; }

    public FrameOffload offload() { return offload; }

    public int origin() { return origin; }

    /** The sender's batch, or null. */
    public SendBatch batch() { return batch; }
}
