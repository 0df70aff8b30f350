package dev.jvbus.app.service;

import dev.jvbus.net.PortStats;
import dev.jvbus.net.TapPort;

/**
 * A TAP port the operator attached: its id on its network (the one {@code DELETE .../ports/{id}}
 * takes), where its interface is, and its counters: the switch side ({@code stats}: frames in and
 * out, drops by reason) and the kernel side ({@code tap}).
 */
public record PortView(int id, String network, String namespace, String ifname, PortStats stats, TapPort.TapStats tap) { }
