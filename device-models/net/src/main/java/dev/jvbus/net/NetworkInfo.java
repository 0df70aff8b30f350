package dev.jvbus.net;

import java.util.List;
import java.util.Optional;

/** A snapshot of one network: its name, its ports (by id) and its learned MAC table (by address). */
public record NetworkInfo(String name, List<PortInfo> ports, List<MacEntry> macTable) {
    public NetworkInfo {
        ports = List.copyOf(ports);
        macTable = List.copyOf(macTable);
    }

    /** The port of device {@code devid} (unsigned), if that device has joined this network. */
    public Optional<PortInfo> devicePort(long devid) {
        return ports.stream().filter(p -> p.isDevice(devid)).findFirst();
    }
}
