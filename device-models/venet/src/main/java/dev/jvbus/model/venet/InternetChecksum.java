package dev.jvbus.model.venet;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * RFC 1071 ones'-complement checksum, for frames the driver sent with VENET_SG_FLAG_NEEDS_CSUM
 * (Linux CHECKSUM_PARTIAL): the field at {@code start + offset} already holds the pseudo-header
 * sum; the device sums from {@code start} to the end of the frame and stores the folded
 * complement there, as Linux's {@code skb_checksum_help} does.
 */
final class InternetChecksum {
    private InternetChecksum() {}

    /** Sum of 16-bit big-endian words of {@code [from, to)} (an odd last byte padded with zero), not folded. */
    static long sum(MemorySegment s, long from, long to) {
        long sum = 0;
        long i = from;
        for (; i + 1 < to; i += 2)
            sum += ((s.get(ValueLayout.JAVA_BYTE, i) & 0xFF) << 8) | (s.get(ValueLayout.JAVA_BYTE, i + 1) & 0xFF);
        if (i < to) sum += (s.get(ValueLayout.JAVA_BYTE, i) & 0xFF) << 8;
        return sum;
    }

    static int fold(long sum) {
        while ((sum >>> 16) != 0) sum = (sum & 0xFFFF) + (sum >>> 16);
        return (int) sum;
    }

    /** Completes a partial checksum in place: {@code frame[start+offset..+2] = ~fold(sum(frame[start..length)))}. */
    static void finish(MemorySegment frame, int start, int offset, int length) {
        int c = ~fold(sum(frame, start, length)) & 0xFFFF;
        frame.set(ValueLayout.JAVA_BYTE, start + offset, (byte) (c >>> 8));
        frame.set(ValueLayout.JAVA_BYTE, start + offset + 1, (byte) c);
    }
}
