package dev.jvbus.net;

import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * What a frame asks of its receiver beyond its bytes: the meaning of a {@code virtio_net_hdr} (virtio 1.x
 * section 5.1.6, and the TAP's vnet header, which is the same struct). A checksum left partial
 * ({@link #F_NEEDS_CSUM}: the sum from {@code csumStart} goes to {@code csumStart + csumOffset}), one known
 * good ({@link #F_DATA_VALID}), or a super-frame to cut into {@code gsoSize}-byte TCP or UDP segments
 * ({@link #GSO_TCPV4}, {@link #GSO_TCPV6}, {@link #GSO_UDP_L4}, with {@link #GSO_ECN}).
 *
 * <p><b>A flyweight, no allocation per frame.</b> The sending thread owns one instance, fills it for each
 * frame and hands it with the frame to {@link SwitchPort#send(MemorySegment, long, int, FrameOffload)}; it is
 * valid only during that call, like the frame. {@link #NONE} is the shared, frozen "bare frame" header.
 *
 * <p><b>One place checks it.</b> {@link #check} is the single validation of a header against its frame (the
 * tx path of a device calls it on a guest's header; the switch calls it on any header not yet checked). It
 * parses the frame's own L2/L3/L4 headers, so that a GSO header describes a frame the segmenter can cut:
 * Ethernet (one optional VLAN tag), IPv4 without fragments or IPv6 without extension headers, then TCP or
 * UDP at {@code csumStart}. It also normalises: {@code hdrLen} becomes the end of the L4 header (a hint
 * the guest may get wrong, which a TAP write would refuse), flags other than NEEDS_CSUM/DATA_VALID go.
 *
 * <p>What a receiver takes is a mask of {@code TAKES_*} bits, numbered as Linux's {@code TUN_F_*} so that a
 * TAP's {@code TUNSETOFFLOAD} mask is the same number.
 */
public final class FrameOffload {
    public static final int F_NEEDS_CSUM = 1, F_DATA_VALID = 2;
    public static final int GSO_NONE = 0, GSO_TCPV4 = 1, GSO_UDP = 3, GSO_TCPV6 = 4, GSO_UDP_L4 = 5, GSO_ECN = 0x80;

    public static final int TAKES_CSUM = 0x01, TAKES_TSO4 = 0x02, TAKES_TSO6 = 0x04, TAKES_TSO_ECN = 0x08,
            TAKES_UFO = 0x10, TAKES_USO4 = 0x20, TAKES_USO6 = 0x40;
    /** Everything a GSO-capable receiver (a TAP with offloads, a guest with all GUEST_* features) may take here. */
    public static final int TAKES_ALL = TAKES_CSUM | TAKES_TSO4 | TAKES_TSO6 | TAKES_TSO_ECN | TAKES_USO4 | TAKES_USO6;

    /** The vnet header's bytes this carries: flags to csum_offset (num_buffers is the rx ring's business). */
    public static final int VNET_FIELDS = 10;
    /**
     * The largest frame a GSO header may describe: 64 KiB of IP packet (Linux's legacy GSO limit, what
     * virtio-net and TAP peers send) plus an Ethernet header and a VLAN tag.
     */
    public static final int MAX_GSO_FRAME = 65_536 + 18;
    /** Far enough into a frame to hold every header {@link #check} reads (14 + 4 + 60 + 60). */
    static final int HEADER_WINDOW = 160;

    /** What {@link #check} found. */
    public static final int OK = 0, BAD_CSUM = 1, BAD_GSO = 2;

    /** A bare frame: no offload asked for. Frozen: setting it throws. */
    public static final FrameOffload NONE = new FrameOffload(true);

    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final int ETH_IPV4 = 0x0800, ETH_IPV6 = 0x86DD, ETH_VLAN = 0x8100;
    private static final int TCP = 6, UDP = 17;

    private final boolean frozen;
    private int flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset;
    /** Set by {@link #check}: the TAKES_* bits a receiver needs to take the frame as it is; cleared by any change. */
    private int needs;
    private boolean checked;
    /** Set by {@link #check} on a GSO header: where the L3 header starts, and whether it is IPv4. */
    private int l3;
    private boolean ipv4;

    public FrameOffload() {
        this(false);
    }

    private FrameOffload(boolean frozen) {
        this.frozen = frozen;
        this.checked = frozen;
    }

    public int flags() { return flags; }
    public int gsoType() { return gsoType; }
    public int hdrLen() { return hdrLen; }
    public int gsoSize() { return gsoSize; }
    public int csumStart() { return csumStart; }
    public int csumOffset() { return csumOffset; }

    public boolean isPlain() { return flags == 0 && gsoType == GSO_NONE; }
    public boolean isGso() { return gsoType != GSO_NONE; }
    public boolean needsCsum() { return (flags & F_NEEDS_CSUM) != 0; }
    public boolean dataValid() { return (flags & F_DATA_VALID) != 0; }

    /** After {@link #check}: the TAKES_* bits a receiver must have to get this frame as it is. */
    public int needs() { return needs; }

    /** True after a successful {@link #check}, until the next change. */
    public boolean checked() { return checked; }

    int l3() { return l3; }
    boolean ipv4() { return ipv4; }

    /** Sets every field (from a header a peer wrote: not yet checked). */
    public FrameOffload set(int flags, int gsoType, int hdrLen, int gsoSize, int csumStart, int csumOffset) {
        if (frozen) throw new UnsupportedOperationException("FrameOffload.NONE is shared and frozen");
        this.flags = flags & 0xff;
        this.gsoType = gsoType & 0xff;
        this.hdrLen = hdrLen & 0xffff;
        this.gsoSize = gsoSize & 0xffff;
        this.csumStart = csumStart & 0xffff;
        this.csumOffset = csumOffset & 0xffff;
        this.needs = 0;
        this.checked = false;
        return this;
    }

    /** A bare frame again. */
    public FrameOffload clear() {
        return set(0, GSO_NONE, 0, 0, 0, 0);
    }

    /** Reads the first {@link #VNET_FIELDS} bytes of a little-endian {@code virtio_net_hdr} at {@code at}. */
    public FrameOffload readVnet(MemorySegment s, long at) {
        return readVnet(s, at, 0xff);
    }

    /**
     * As {@link #readVnet(MemorySegment, long)}, keeping only the flags in {@code flagsKept} (a device's tx path
     * drops DATA_VALID, which the spec gives to rx only). Two loads (the first eight bytes as one word, then
     * csum_offset), not six: per frame on every tx path, each access of a guest's memory is a checked one.
     */
    public FrameOffload readVnet(MemorySegment s, long at, int flagsKept) {
        long w = HostMemory.getLong(s, LE64, at);
        short csumOffset = HostMemory.getShort(s, LE16, at + 8);
        return set((int) w & flagsKept, (int) (w >>> 8), (int) (w >>> 16), (int) (w >>> 32), (int) (w >>> 48), csumOffset);
    }

    /** flags, gso_type, hdr_len, gso_size, csum_start: the header's first eight bytes as one little-endian word. */
    private long firstWord() {
        return (flags & 0xffL) | (gsoType & 0xffL) << 8 | (hdrLen & 0xffffL) << 16 | (gsoSize & 0xffffL) << 32 | (csumStart & 0xffffL) << 48;
    }

    /** Writes this as the first {@link #VNET_FIELDS} bytes of a little-endian {@code virtio_net_hdr} at {@code at}. */
    public void writeVnet(MemorySegment s, long at) {
        s.set(LE64, at, firstWord());
        s.set(LE16, at + 8, (short) csumOffset);
    }

    /**
     * Writes this as a whole 12-byte {@code virtio_net_hdr_v1} (with VERSION_1 or MRG_RXBUF) at {@code at}, with
     * {@code numBuffers} as its num_buffers: two stores, straight into a guest's rx buffer (a device's rx path
     * used to build the header in a scratch buffer and copy it over, a fifth of its delivery).
     */
    public void writeVnetV1(MemorySegment s, long at, int numBuffers) {
        writeVnetV1(s, at, vnetV1Head(), vnetV1Tail(numBuffers));
    }

    /** The first eight bytes of this as a {@code virtio_net_hdr_v1}, as {@link #writeVnetV1(MemorySegment, long, long, int)} takes them. */
    public long vnetV1Head() {
        return firstWord();
    }

    /** The last four bytes of this as a {@code virtio_net_hdr_v1} with {@code numBuffers} (csum_offset, num_buffers). */
    public int vnetV1Tail(int numBuffers) {
        return (csumOffset & 0xffff) | numBuffers << 16;
    }

    /** Writes a 12-byte {@code virtio_net_hdr_v1} whose words were taken earlier ({@link #vnetV1Head()}, {@link #vnetV1Tail(int)}). */
    public static void writeVnetV1(MemorySegment s, long at, long head, int tail) {
        s.set(LE64, at, head);
        s.set(LE32, at + 8, tail);
    }

    /** True if the 12 bytes at {@code at} already hold the {@code virtio_net_hdr_v1} of these words. */
    public static boolean holdsVnetV1(MemorySegment s, long at, long head, int tail) {
        return s.get(LE64, at) == head && s.get(LE32, at + 8) == tail;
    }

    /**
     * Checks this header against the frame it travels with ({@code length} bytes at {@code offset}), and
     * normalises it (see the class comment). The one validation of a peer's offload header.
     *
     * @return {@link #OK}; {@link #BAD_CSUM} for NEEDS_CSUM whose field lies past the frame;
     *         {@link #BAD_GSO} for a GSO type this switch does not carry (UFO, unknown, ECN on UDP) or one
     *         that does not describe the frame (no NEEDS_CSUM, gso_size 0, not TCP/UDP over IPv4/IPv6 at
     *         csum_start, headers cut short, nothing to segment, larger than {@link #MAX_GSO_FRAME})
     */
    public int check(MemorySegment frame, long offset, int length) {
        if (frozen) return OK;
        checked = false;
        flags &= F_NEEDS_CSUM | F_DATA_VALID;
        if (gsoType == GSO_NONE) {
            hdrLen = 0;
            if (needsCsum() && (long) csumStart + csumOffset + 2 > length) return BAD_CSUM;
            needs = needsCsum() ? TAKES_CSUM : 0;
            checked = true;
            return OK;
        }
        int base = gsoType & ~GSO_ECN;
        boolean ecn = (gsoType & GSO_ECN) != 0;
        if (base != GSO_TCPV4 && base != GSO_TCPV6 && base != GSO_UDP_L4) return BAD_GSO;
        if (ecn && base == GSO_UDP_L4) return BAD_GSO;
        if (!needsCsum() || gsoSize == 0 || length > MAX_GSO_FRAME) return BAD_GSO;
        int end = parse(frame, offset, length, base);
        if (end < 0) return BAD_GSO;
        if (end >= length) return BAD_GSO;                       // a header and no payload: nothing to carry
        hdrLen = end;
        flags &= F_NEEDS_CSUM;                                    // partial, so not "valid" yet
        int n = TAKES_CSUM;
        if (base == GSO_TCPV4) n |= TAKES_TSO4;
        else if (base == GSO_TCPV6) n |= TAKES_TSO6;
        else n |= ipv4 ? TAKES_USO4 : TAKES_USO6;
        if (ecn) n |= TAKES_TSO_ECN;
        needs = n;
        checked = true;
        return OK;
    }

    /**
     * Finds the L3 and L4 headers of a GSO frame of type {@code base}: returns where the L4 header ends,
     * or -1 if the frame is not what the type says. Sets {@link #l3} and {@link #ipv4}. Reads only the
     * first {@link #HEADER_WINDOW} bytes.
     */
    int parse(MemorySegment f, long off, int length, int base) {
        if (length < 14 + 20 + 8) return -1;
        int l3 = 14;
        int type = u16(f, off + 12);
        if (type == ETH_VLAN) {
            l3 = 18;
            type = u16(f, off + 16);
        }
        int l4, proto;
        boolean v4;
        if (type == ETH_IPV4) {
            if (l3 + 20 > length) return -1;
            int vihl = u8(f, off + l3);
            if (vihl >> 4 != 4 || (vihl & 15) < 5) return -1;
            if ((u16(f, off + l3 + 6) & 0x3fff) != 0) return -1;   // a fragment (MF or an offset): no L4 header to cut by
            proto = u8(f, off + l3 + 9);
            l4 = l3 + (vihl & 15) * 4;
            v4 = true;
            if (base == GSO_TCPV6) return -1;
        } else if (type == ETH_IPV6) {
            if (l3 + 40 > length) return -1;
            if (u8(f, off + l3) >> 4 != 6) return -1;
            proto = u8(f, off + l3 + 6);                           // no extension headers
            l4 = l3 + 40;
            v4 = false;
            if (base == GSO_TCPV4) return -1;
        } else {
            return -1;
        }
        boolean tcp = base != GSO_UDP_L4;
        if (proto != (tcp ? TCP : UDP) || csumStart != l4 || csumOffset != (tcp ? 16 : 6)) return -1;
        int end;
        if (tcp) {
            if (l4 + 20 > length) return -1;
            int doff = u8(f, off + l4 + 12) >> 4;
            if (doff < 5) return -1;
            end = l4 + doff * 4;
        } else {
            end = l4 + 8;
        }
        if (end > length) return -1;
        this.l3 = l3;
        this.ipv4 = v4;
        return end;
    }

    static int u8(MemorySegment s, long at) {
        return s.get(ValueLayout.JAVA_BYTE, at) & 0xff;
    }

    static int u16(MemorySegment s, long at) {
        return s.get(BE16, at) & 0xffff;
    }

    @Override
    public String toString() {
        return "FrameOffload[flags " + flags + ", gso " + gsoType + ", hdr_len " + hdrLen + ", gso_size " + gsoSize
                + ", csum " + csumStart + "+" + csumOffset + (checked ? ", checked, needs 0x" + Integer.toHexString(needs) : "") + "]";
    }
}
