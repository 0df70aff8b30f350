package dev.jvbus.net;

import java.lang.foreign.MemorySegment;

/**
 * Something the switch can hand a frame to: a device's rx queue, a TAP interface. The switch
 * serialises deliveries to one port (and its {@link #flush()}es), so an implementation sees one call at a time.
 */
public interface NetPort {
    /** For operators and logs. */
    String name();

    /** What this port is, for operators: a device, a TAP, or (by default) something else named by {@link #name()}. */
    default PortBackend describe() {
        return new PortBackend.Other(name());
    }

    /**
     * Takes one Ethernet frame (no virtio header) of {@code length} bytes at {@code offset}. The
     * frame is only valid during the call: copy it (into the guest's rx buffer) before returning.
     *
     * @return null when delivered, else why not
     */
    DropReason deliver(MemorySegment frame, long offset, int length);

    /**
     * What this port takes of a frame's offloads ({@link FrameOffload}'s {@code TAKES_*} bits): the switch
     * segments and completes checksums in software for whatever a frame asks that is not here. Read once
     * per frame. By default nothing: the port gets bare, complete frames through {@link #deliver(MemorySegment, long, int)}.
     */
    default int offloadsTaken() {
        return 0;
    }

    /**
     * Takes one frame with its offload header, which asks only for what {@link #offloadsTaken()} said (or
     * is {@link FrameOffload#NONE}, or DATA_VALID for a port that takes checksums). Both are valid only
     * during the call. By default the header is dropped, which is right for a port that takes nothing.
     */
    default DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload) {
        return deliver(frame, offset, length);
    }

    /** {@link #deliver(MemorySegment, long, int, FrameOffload, int) origin} of a frame whose sender keeps no transmit order. */
    int NO_ORIGIN = -1;
    /** The origin's bit that marks a replay: a frame the sender took again after a bus restart (it may have been delivered). */
    int REPLAY = 1 << 16;

    /**
     * The sender's transmit position of a frame: its free-running u16 tx index, plus {@link #REPLAY} when the
     * sender resumed its ring after a bus restart and takes the frame again. Together with the frame's source
     * MAC it names the frame, so a receiver that logs what it delivered can skip a replay it already has.
     */
    static int origin(int position, boolean replay) {
        return (position & 0xffff) | (replay ? REPLAY : 0);
    }

    /** Where the origin keeps the sender's transmit queue ({@link #origin(int, boolean, int)}): above {@link #REPLAY}. */
    int QUEUE_SHIFT = 17;
    /** The most transmit queues an origin tells apart (14 bits: the sign bit stays {@link #NO_ORIGIN}'s). */
    int QUEUES = 1 << 14;

    /**
     * {@link #origin(int, boolean)} of a sender with several transmit queues (multiqueue): each queue has positions
     * of its own, so the origin names the queue too ({@code queue} below {@link #QUEUES}).
     */
    static int origin(int position, boolean replay, int queue) {
        return origin(position, replay) | (queue & (QUEUES - 1)) << QUEUE_SHIFT;
    }

    /** The sender's transmit queue an origin names (0 for one made by {@link #origin(int, boolean)}). */
    static int originQueue(int origin) {
        return origin >>> QUEUE_SHIFT & (QUEUES - 1);
    }

    /**
     * {@link #deliver(MemorySegment, long, int, FrameOffload)} of a frame whose sender told its {@link #origin}.
     * A receiver that keeps no delivery log ignores it (the default).
     */
    default DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload, int origin) {
        return deliver(frame, offset, length, offload);
    }

    /**
     * {@link #deliver(MemorySegment, long, int, FrameOffload, int)} for a frame that {@linkplain FrameMeta#stays stays}
     * where it is until the sender's batch is flushed: the port may take it now and copy its bytes later, but no
     * later than the end of the sender's run to it ({@link #endRun()}) or its {@link #flush()}, whichever comes first
     * (the sender's thread calls one of them before it lets the port go). By default, copied at once.
     */
    default DropReason deliverStaying(MemorySegment frame, long offset, int length, FrameOffload offload, int origin) {
        return origin == NO_ORIGIN ? deliver(frame, offset, length, offload) : deliver(frame, offset, length, offload, origin);
    }

    /**
     * The sender whose frames this port took from {@link #deliverStaying} goes on to another port, or ends its batch:
     * any copy the port put off must be made now, on the sender's thread, while those frames still stay. Publishing
     * them is {@link #flush()}'s. Called under the delivery lock, like the deliveries.
     *
     * @return how many frames it had taken and has now lost, because its own ring faulted while it made those copies
     *         (its memory was cut off under it): the switch counts them as {@link DropReason#RING_FAULT} drops at this
     *         port, besides the frames it counted as handed over when they were taken
     */
    default int endRun() {
        return 0;
    }

    /**
     * Makes visible what the deliveries since the last flush left pending: a port may take a sender's frames
     * into its ring and publish them (one used-index store, one notify decision) only here. The switch calls
     * it under the port's delivery lock at the end of each sender's {@link SendBatch}, or right after each
     * delivery from a sender without one. By default nothing: a port that publishes every frame at once.
     *
     * @return how many frames it had taken and has now lost, because its own ring faulted while it published them
     *         (as {@link #endRun()}'s): counted by the switch as {@link DropReason#RING_FAULT} drops at this port
     */
    default int flush() {
        return 0;
    }
}
