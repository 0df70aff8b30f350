package dev.jvbus.app.service;

/**
 * A TAP port as an operator asks for it: the network namespace it goes into, by the name
 * {@code ip netns add} gave it (it must exist: the namespace is the host's, the bus makes none), and
 * the interface name (1 to 15 bytes; {@code tap%d} lets the kernel number it).
 */
public record PortRequest(String namespace, String ifname) { }
