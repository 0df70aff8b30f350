package dev.jvbus.net;

/**
 * What is behind a switch port, as an operator names it: a bus device, a TAP interface, or something
 * else that joined the switch (a test's or a benchmark's peer).
 */
public sealed interface PortBackend {
    /** A device model's port: the device's devid (unsigned) and model type within the network's container. */
    record Device(long devid, String type) implements PortBackend { }

    /** A Linux TAP interface bridged onto the network. */
    record Tap(String ifname) implements PortBackend { }

    /** Any other {@link NetPort}, described by its name. */
    record Other(String name) implements PortBackend { }
}
