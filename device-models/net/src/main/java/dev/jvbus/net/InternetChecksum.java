package dev.jvbus.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** RFC 1071 ones'-complement sums over frame bytes, eight bytes a step; nothing allocated. */
final class InternetChecksum {
    private InternetChecksum() {}

    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /**
     * Adds the 16-bit big-endian words of {@code [at, at + len)} to {@code sum} (unfolded; an odd last
     * byte is the high half of a word). The sum of 32-bit halves folds to the same 16-bit sum.
     */
    static long add(long sum, MemorySegment s, long at, int len) {
        int i = 0;
        for (; i + 8 <= len; i += 8) {
            long v = s.get(BE64, at + i);
            sum += (v >>> 32) + (v & 0xffff_ffffL);
        }
        for (; i + 2 <= len; i += 2) sum += s.get(BE16, at + i) & 0xffff;
        if (i < len) sum += (s.get(ValueLayout.JAVA_BYTE, at + i) & 0xff) << 8;
        return sum;
    }

    /** Folds to 16 bits (not inverted). */
    static int fold(long sum) {
        while ((sum >>> 16) != 0) sum = (sum & 0xffff) + (sum >>> 16);
        return (int) sum;
    }

    /** The checksum field's value for a sum: folded and inverted. */
    static int finish(long sum) {
        return ~fold(sum) & 0xffff;
    }

    static void put(MemorySegment s, long at, int v) {
        s.set(BE16, at, (short) v);
    }

    /**
     * Completes a partial checksum as virtio's NEEDS_CSUM asks: the sum from {@code start} to the end of
     * the {@code length}-byte frame at 0 (the field holds the seed the sender put there, the pseudo-header
     * sum), stored at {@code start + offset}; 0 as 0xffff, as Linux's {@code skb_checksum_help} does.
     */
    static void complete(MemorySegment frame, int length, int start, int offset) {
        int c = finish(add(0, frame, start, length - start));
        put(frame, start + offset, c == 0 ? 0xffff : c);
    }
}
