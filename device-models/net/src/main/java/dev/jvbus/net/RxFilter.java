package dev.jvbus.net;

import java.util.Arrays;

/**
 * Which frames a port takes, as its driver set it (virtio-net's VIRTIO_NET_CTRL_RX and
 * VIRTIO_NET_CTRL_MAC_TABLE_SET, the same rules as QEMU's {@code receive_filter}): the switch asks
 * {@link #accepts} before it hands a flooded or forwarded frame to the port, and sends every port whose
 * filter {@link #wantsForeignUnicast() wants other ports' unicast} a copy of frames it forwards to
 * another port's learned MAC (promiscuous mode).
 *
 * <p>{@link #ACCEPT_ALL} is what a port has until its driver says otherwise, and what every port had
 * before filters: it takes everything the switch floods to it or forwards to its MAC, and no copies of
 * other ports' unicast.
 *
 * <p>Immutable; a port swaps the whole filter (one volatile write), so the forwarding path reads a
 * consistent one without a lock. The address lists are short (at most {@link #MAX_ADDRESSES} together:
 * a driver cannot make the switch's per-frame check long) and scanned linearly.
 *
 * @param set         false for {@link #ACCEPT_ALL} (no driver has set a filter): the other fields mean nothing
 * @param own         the port's own unicast MAC (its device's current address), 0 if it has none
 * @param unicast     extra unicast MACs it takes (MAC_TABLE_SET's first table)
 * @param multicast   multicast MACs it takes without all-multicast (MAC_TABLE_SET's second table)
 * @param promiscuous every frame, including unicast the switch forwards to other ports
 * @param allMulti    every multicast frame
 * @param allUni      every unicast frame, including other ports'
 * @param noMulti     no multicast frame (broadcast excepted)
 * @param noUni       no unicast frame
 * @param noBroadcast no broadcast frame
 */
public record RxFilter(boolean set, long own, long[] unicast, long[] multicast, boolean promiscuous, boolean allMulti, boolean allUni,
                       boolean noMulti, boolean noUni, boolean noBroadcast) {
    /** At most this many addresses in the unicast and multicast tables together (QEMU's MAC_TABLE_ENTRIES). */
    public static final int MAX_ADDRESSES = 64;

    /** No filter: everything the switch sends this port's way (the switch's behaviour before filters). */
    public static final RxFilter ACCEPT_ALL = new RxFilter(false, 0, new long[0], new long[0], false, false, false, false, false, false);

    public RxFilter {
        unicast = unicast.clone();
        multicast = multicast.clone();
        if (unicast.length + multicast.length > MAX_ADDRESSES)
            throw new IllegalArgumentException("at most " + MAX_ADDRESSES + " filter addresses, not " + (unicast.length + multicast.length));
    }

    /** The extra unicast addresses (a copy: the filter is immutable). */
    @Override
    public long[] unicast() {
        return unicast.clone();
    }

    /** The multicast addresses (a copy: the filter is immutable). */
    @Override
    public long[] multicast() {
        return multicast.clone();
    }

    /** A filter with driver-set modes and tables for a port whose own MAC is {@code own}. */
    public static RxFilter of(long own, boolean promiscuous, boolean allMulti) {
        return new RxFilter(true, own, new long[0], new long[0], promiscuous, allMulti, false, false, false, false);
    }

    /** Whether the port takes a frame for {@code dst} that the switch floods or forwards to it. Allocates nothing. */
    public boolean accepts(long dst) {
        if (!set || promiscuous) return true;
        if (MacAddress.isGroup(dst)) {
            if (dst == MacAddress.BROADCAST) return !noBroadcast;
            if (noMulti) return false;
            if (allMulti) return true;
            for (long m : multicast) if (m == dst) return true;
            return false;
        }
        if (noUni) return false;
        if (allUni || dst == own) return true;
        for (long m : unicast) if (m == dst) return true;
        return false;
    }

    /** Whether the port wants copies of unicast frames the switch forwards to other ports (promiscuous, all-unicast). */
    public boolean wantsForeignUnicast() {
        return set && (promiscuous || allUni && !noUni);
    }

    /** This filter with the port's own MAC changed (MAC_ADDR_SET). */
    public RxFilter withOwn(long mac) {
        if (!set) return this;
        return new RxFilter(true, mac, unicast, multicast, promiscuous, allMulti, allUni, noMulti, noUni, noBroadcast);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RxFilter f && set == f.set && own == f.own && Arrays.equals(unicast, f.unicast)
                && Arrays.equals(multicast, f.multicast) && promiscuous == f.promiscuous && allMulti == f.allMulti && allUni == f.allUni
                && noMulti == f.noMulti && noUni == f.noUni && noBroadcast == f.noBroadcast;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(own) * 31 + Arrays.hashCode(unicast) * 7 + Arrays.hashCode(multicast);
    }

    @Override
    public String toString() {
        if (!set) return "RxFilter[accept all]";
        return "RxFilter[own " + MacAddress.toString(own) + (promiscuous ? ", promiscuous" : "") + (allMulti ? ", all-multicast" : "")
                + (allUni ? ", all-unicast" : "") + (noMulti ? ", no multicast" : "") + (noUni ? ", no unicast" : "")
                + (noBroadcast ? ", no broadcast" : "") + ", " + unicast.length + " unicast, " + multicast.length + " multicast]";
    }
}
