package dev.jvbus.net;

import java.lang.foreign.MemorySegment;

/**
 * Something the switch can hand a frame to: a device's rx queue, a TAP interface. The switch
 * serialises deliveries to one port, so an implementation sees one {@code deliver} at a time.
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

    /** {@link #deliver(MemorySegment, long, int, int) origin} of a frame whose sender keeps no transmit order. */
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

    /**
     * {@link #deliver(MemorySegment, long, int)} of a frame whose sender told its {@link #origin}. A receiver
     * that keeps no delivery log ignores it (the default).
     */
    default DropReason deliver(MemorySegment frame, long offset, int length, int origin) {
        return deliver(frame, offset, length);
    }
}
