package dev.jvbus.model.venet;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.MacSpoofCheck;
import dev.jvbus.net.Networks;
import java.util.List;
import java.util.Map;

/**
 * The operator's parameters of one venet device, checked once at creation.
 *
 * @param network switch name within the device's container
 * @param mac     the MAC the driver learns with MACQUERY (48 bits in a long)
 * @param mtu     largest payload; frames may be {@code mtu + 14} bytes
 * @param macSpoofCheck whether the switch drops frames the device sends from any source but its MAC
 *                ({@value MacSpoofCheck#PARAM}, default on)
 * @param idle    how the tx worker's thread waits for work ({@value PollGroups#BUSY_POLL_PARAM}: {@code off}, the default,
 *                spins a while, then sleeps on the doorbells; {@code on} never sleeps, keeping a core while the device runs)
 */
public record VenetSettings(String network, long mac, int mtu, MacSpoofCheck macSpoofCheck, DoorbellWait.Mode idle) {
    public static final List<String> KNOWN = List.of("network", "mac", "mtu", MacSpoofCheck.PARAM, QueueLayout.SIZE_PARAM,
            PollGroups.BUSY_POLL_PARAM);
    public static final int MIN_MTU = 68;
    public static final int MAX_MTU = 65535;

    public int maxFrame() {
        return mtu + VenetWire.ETH_HLEN;
    }

    static VenetSettings parse(DeviceContext context) {
        Map<String, String> p = context.params();
        for (String k : p.keySet())
            if (!KNOWN.contains(k)) throw new IllegalArgumentException("unknown venet parameter '" + k + "'; venet takes " + KNOWN);
        String network = p.getOrDefault("network", "default").trim();
        Networks.checkName(network);
        long mac;
        if (p.containsKey("mac")) {
            mac = MacAddress.parse(p.get("mac"));
            if (MacAddress.isGroup(mac) || mac == 0)
                throw new IllegalArgumentException("venet parameter 'mac' must be a unicast address, got " + p.get("mac"));
        } else {
            mac = derivedMac(context.container(), context.devid());
        }
        int mtu;
        try {
            mtu = Integer.parseInt(p.getOrDefault("mtu", "1500").trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("venet parameter 'mtu' is not a number: '" + p.get("mtu") + "'");
        }
        if (mtu < MIN_MTU || mtu > MAX_MTU)
            throw new IllegalArgumentException("venet parameter 'mtu' must be in " + MIN_MTU + ".." + MAX_MTU + ", got " + mtu);
        try {   // the shared parameters' checks, their messages said as venet's
            return new VenetSettings(network, mac, mtu, MacSpoofCheck.from(p), PollGroups.idleOf(p));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("venet " + e.getMessage());
        }
    }

    /** 02:hh:hh:dd:dd:dd: 16 bits of the container name's hash, then the devid's low 24 bits; stable per (container, devid). */
    static long derivedMac(String container, int devid) {
        long seed = ((long) (container.hashCode() & 0xFFFF) << 24) | (devid & 0xFF_FFFFL);
        return MacAddress.local(seed);
    }
}
