package dev.jvbus.core.ring;

/**
 * Where a running ring is, as its device side sees it, for operators: read racily from another thread
 * (each value is one plain read of an int the ring's own thread writes, so exact but not a consistent
 * set). Reading never touches the ring's state; {@link #available()} may read the driver's index in
 * shared memory (one acquire load).
 */
public interface RingPosition {
    /** Entries in the ring. */
    int size();

    /** The next buffer the device takes (split ring: last_avail_idx, u16; IOQ: descriptor index). */
    int nextAvail();

    /** The next slot the device completes into (split ring: used idx, u16; IOQ: inuse.head). */
    int nextUsed();

    /** Buffers taken and not yet returned. */
    int inFlight();

    /** Buffers the driver made available that the device has not taken yet (the ring's fill). */
    int available();
}
