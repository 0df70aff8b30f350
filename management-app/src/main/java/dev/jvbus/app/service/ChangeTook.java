package dev.jvbus.app.service;

/**
 * How long a change through {@link BusChanges} took, published for metrics (hotplug latency): an
 * application event beside {@link BusEvent}, not on the event stream.
 */
public record ChangeTook(String change, long nanos) {
    /** A device hotplug: from the request to the device on the bus (its checks included). */
    public static final String HOTPLUG = "hotplug";
}
