package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The frame a hypervisor broadcasts for a guest after a migration so that switches and peers learn where
 * the guest's MAC now is: a RARP "request reverse" (RFC 903) from the guest's MAC to broadcast, with no
 * protocol addresses. Byte for byte the frame QEMU's {@code qemu_announce_self} builds
 * ({@code net/announce.c}: 42 bytes of headers zero-padded to the 60-byte Ethernet minimum without FCS);
 * DPDK's vhost library ({@code rte_net_make_rarp_packet}) sends the same 42 bytes. Receivers need nothing
 * from it but the source address: a learning switch moves the MAC to the port it came in on.
 */
public final class RarpAnnouncement {
    private RarpAnnouncement() {}

    /** Frame length: the Ethernet minimum without FCS, as QEMU sends it. */
    public static final int LENGTH = 60;
    /** ETH_P_RARP. */
    public static final int ETHERTYPE = 0x8035;
    /** ARPOP_RREQUEST: "request reverse". */
    public static final int OP_REQUEST_REVERSE = 3;

    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** Writes the announcement for {@code mac} into {@code LENGTH} bytes of {@code frame} at {@code offset}. */
    public static void write(MemorySegment frame, long offset, long mac) {
        frame.asSlice(offset, LENGTH).fill((byte) 0);
        MacAddress.write(frame, offset, MacAddress.BROADCAST);       // destination
        MacAddress.write(frame, offset + 6, mac);                    // source: the guest
        frame.set(BE16, offset + 12, (short) ETHERTYPE);
        frame.set(BE16, offset + 14, (short) 1);                     // hardware: Ethernet
        frame.set(BE16, offset + 16, (short) 0x0800);                // protocol: IPv4
        frame.set(ValueLayout.JAVA_BYTE, offset + 18, (byte) 6);     // hardware address length
        frame.set(ValueLayout.JAVA_BYTE, offset + 19, (byte) 4);     // protocol address length
        frame.set(BE16, offset + 20, (short) OP_REQUEST_REVERSE);
        MacAddress.write(frame, offset + 22, mac);                   // sender hardware address; sender IP 0
        MacAddress.write(frame, offset + 32, mac);                   // target hardware address; target IP 0, padding 0
    }
}
