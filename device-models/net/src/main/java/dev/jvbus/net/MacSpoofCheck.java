package dev.jvbus.net;

import java.util.Locale;
import java.util.Map;

/**
 * Whether the switch holds a device's port to the MAC the device was assigned (source-MAC
 * enforcement against spoofing): the operator's choice per device, as the creation parameter
 * {@value #PARAM} = {@code on} (the default) or {@code off}. With it on, a guest that sends from
 * another device's MAC, a group address or zero has the frame dropped and counted as
 * {@link DropReason#SPOOFED_SOURCE}; it cannot make the switch learn someone else's address.
 * Turn it off for a guest that legitimately sends from other MACs (a bridge or a nested switch
 * inside the guest, a driver that picks its own address). TAP ports are never checked.
 */
public enum MacSpoofCheck {
    ON, OFF;

    /** The device parameter's name, shared by every net model. */
    public static final String PARAM = "mac-spoof-check";

    /**
     * The operator's choice from a device's parameters: absent means {@link #ON}.
     *
     * @throws IllegalArgumentException naming the parameter if its value is neither on nor off
     */
    public static MacSpoofCheck from(Map<String, String> params) {
        String v = params.get(PARAM);
        if (v == null) return ON;
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "on" -> ON;
            case "off" -> OFF;
            default -> throw new IllegalArgumentException("parameter '" + PARAM + "' must be on or off, not '" + v + "'");
        };
    }

    /** Joins {@code backend} to {@code sw}: held to {@code mac} when this is {@link #ON}, free to send from any MAC when {@link #OFF}. */
    public SwitchPort join(L2Switch sw, NetPort backend, long mac) {
        return this == ON ? sw.join(backend, mac) : sw.join(backend);
    }
}
