package dev.jvbus.net;

import java.util.Optional;

/**
 * A snapshot of one switch port, for operators: its id (unique within its network, never reused),
 * its name, what is behind it, the MAC it is held to if {@link MacSpoofCheck} is on for it, and its counters.
 */
public record PortInfo(int id, String name, PortBackend backend, Optional<String> assignedMac, PortStats stats) {
    /** True if this is the port of the device {@code devid} (unsigned). */
    public boolean isDevice(long devid) {
        return backend instanceof PortBackend.Device d && d.devid() == devid;
    }
}
