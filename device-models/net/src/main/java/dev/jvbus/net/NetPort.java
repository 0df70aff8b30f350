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
}
