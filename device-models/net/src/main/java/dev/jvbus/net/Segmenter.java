package dev.jvbus.net;

import static dev.jvbus.net.FrameOffload.u16;
import static dev.jvbus.net.FrameOffload.u8;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Software segmentation and checksum completion for one receiving port that cannot take a frame's
 * offload as it is (see {@link SwitchPort}): cuts a TCP (TSO) or UDP (USO) super-frame into
 * {@code gso_size} segments, or completes a partial checksum, in a scratch buffer of its own, as Linux's
 * software GSO ({@code tcp_gso_segment}, {@code __udp_gso_segment}, {@code inet_gso_segment}) would:
 * <ul>
 * <li>each segment: the super-frame's headers, then its share of the payload;</li>
 * <li>IPv4: total length, the ID incremented per segment, header checksum; IPv6: payload length;</li>
 * <li>TCP: sequence number advanced by the payload before it, FIN and PSH only on the last segment, CWR
 *     only on the first (the ECN rule); UDP: its length;</li>
 * <li>the L4 checksum computed in full over the pseudo-header and the segment (never the sender's seed,
 *     which a guest may get wrong); a UDP checksum of 0 is sent as 0xffff.</li>
 * </ul>
 *
 * <p>The super-frame may sit in a sender's guest memory, which the guest can rewrite while we read it: its
 * headers are copied once and checked again on the copy ({@link FrameOffload#check}), so every segment is
 * built from one consistent set of headers, and only payload bytes are read from the sender's buffer
 * after that. Used under the port's delivery lock only; nothing allocated per frame.
 */
final class Segmenter {
    /** Room for the largest piece: a completed frame of {@link FrameOffload#MAX_GSO_FRAME}, or headers plus 64 KiB of payload. */
    static final int SCRATCH = FrameOffload.MAX_GSO_FRAME + FrameOffload.HEADER_WINDOW;
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN);
    private static final int TCP_FIN = 0x01, TCP_PSH = 0x08, TCP_CWR = 0x80;

    private final MemorySegment out;
    private final MemorySegment headers;
    private final FrameOffload parsed = new FrameOffload();
    /** The header that goes with each piece: DATA_VALID for a receiver that takes checksums, else none. */
    final FrameOffload pieceHeader = new FrameOffload();

    // the frame being cut (between begin and the last piece)
    private MemorySegment src;
    private long srcOff;
    private int hlen, l3, l4, payload, mss;
    private boolean v4, tcp;
    private int ipId;
    private long seq;
    private int tcpFlags, proto;

    Segmenter() {
        Arena arena = Arena.ofAuto();
        this.out = arena.allocate(SCRATCH, 8);
        this.headers = arena.allocate(FrameOffload.HEADER_WINDOW, 8);
    }

    /** Where every piece is built. */
    MemorySegment out() {
        return out;
    }

    /**
     * Readies {@code length} bytes at {@code offset} with header {@code o} (checked) for a receiver.
     *
     * @return how many pieces {@link #piece} makes (1 for a checksum completion), or -1 if the headers no
     *         longer check on our copy (the sender rewrote them meanwhile) or a piece would not fit
     */
    int begin(MemorySegment frame, long offset, int length, FrameOffload o, boolean receiverTakesCsum) {
        if (receiverTakesCsum) pieceHeader.set(FrameOffload.F_DATA_VALID, FrameOffload.GSO_NONE, 0, 0, 0, 0);
        else pieceHeader.clear();
        if (!o.isGso()) {
            if (length > SCRATCH) return -1;
            MemorySegment.copy(frame, offset, out, 0, length);
            if (o.needsCsum()) InternetChecksum.complete(out, length, o.csumStart(), o.csumOffset());
            src = null;
            hlen = length;
            payload = 0;
            return 1;
        }
        int window = Math.min(length, FrameOffload.HEADER_WINDOW);
        MemorySegment.copy(frame, offset, headers, 0, window);
        parsed.set(o.flags(), o.gsoType(), o.hdrLen(), o.gsoSize(), o.csumStart(), o.csumOffset());
        if (parsed.check(headers, 0, length) != FrameOffload.OK) return -1;
        hlen = parsed.hdrLen();
        if (hlen > window) return -1;
        mss = parsed.gsoSize();
        if (hlen + mss > SCRATCH) return -1;
        src = frame;
        srcOff = offset;
        l3 = parsed.l3();
        l4 = parsed.csumStart();
        v4 = parsed.ipv4();
        tcp = (parsed.gsoType() & ~FrameOffload.GSO_ECN) != FrameOffload.GSO_UDP_L4;
        proto = tcp ? 6 : 17;
        payload = length - hlen;
        if (v4) ipId = u16(headers, l3 + 4);
        if (tcp) {
            seq = headers.get(BE32, l4 + 4) & 0xffff_ffffL;
            tcpFlags = u8(headers, l4 + 13);
        }
        return (payload + mss - 1) / mss;
    }

    /** Builds piece {@code i} of those {@link #begin} announced in {@link #out()}; returns its length. */
    int piece(int i) {
        if (src == null) return hlen;   // the completed frame, built by begin
        int start = i * mss;
        int pay = Math.min(mss, payload - start);
        int len = hlen + pay;
        boolean last = start + pay >= payload;
        MemorySegment.copy(headers, 0, out, 0, hlen);
        MemorySegment.copy(src, srcOff + hlen + start, out, hlen, pay);
        long sum;
        int l4len = len - l4;
        if (v4) {
            InternetChecksum.put(out, l3 + 2, len - l3);
            InternetChecksum.put(out, l3 + 4, (ipId + i) & 0xffff);
            InternetChecksum.put(out, l3 + 10, 0);
            InternetChecksum.put(out, l3 + 10, InternetChecksum.finish(InternetChecksum.add(0, out, l3, l4 - l3)));
            sum = InternetChecksum.add(proto + l4len, out, l3 + 12, 8);
        } else {
            InternetChecksum.put(out, l3 + 4, len - l3 - 40);
            sum = InternetChecksum.add(proto + l4len, out, l3 + 8, 32);
        }
        if (tcp) {
            out.set(BE32, l4 + 4, (int) (seq + start));
            int f = tcpFlags;
            if (!last) f &= ~(TCP_FIN | TCP_PSH);
            if (i > 0) f &= ~TCP_CWR;
            out.set(ValueLayout.JAVA_BYTE, l4 + 13, (byte) f);
            InternetChecksum.put(out, l4 + 16, 0);
            InternetChecksum.put(out, l4 + 16, InternetChecksum.finish(InternetChecksum.add(sum, out, l4, l4len)));
        } else {
            InternetChecksum.put(out, l4 + 4, l4len);
            InternetChecksum.put(out, l4 + 6, 0);
            int c = InternetChecksum.finish(InternetChecksum.add(sum, out, l4, l4len));
            InternetChecksum.put(out, l4 + 6, c == 0 ? 0xffff : c);
        }
        return len;
    }
}
