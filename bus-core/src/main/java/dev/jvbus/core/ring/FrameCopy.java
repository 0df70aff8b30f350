package dev.jvbus.core.ring;

import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * Copies a buffer's bytes between two segments, with a fast path for the small frames a ring carries
 * most (up to {@link #SMALL} bytes). {@link MemorySegment#copy(MemorySegment, long, MemorySegment, long, long)}
 * checks both segments, tests for overlap and then, below its bulk threshold, copies 8 bytes at a time
 * with a liveness check per access: for a 16-byte message the two copies of a send and a receive were a
 * fifth of the single-thread loop (benchmarks/README, "CPU per message"). Here a small copy is two
 * 8-byte loads and two stores, inlined into the caller, whose class, scope and bounds checks C2 shares;
 * the bounds of each access are still FFM's, so a wrong length throws, never writes outside a segment
 * (and a copy that does not fit throws before it writes anything).
 * Larger copies go to {@code MemorySegment.copy} (its bulk path wins there).
 *
 * <p>Between two native segments of the global scope (a connector's mapping of a peer's file, which its
 * {@link dev.jvbus.core.sys.MappingLifetime} keeps mapped while the copying worker holds it, or memory the
 * process never frees) the small copy reads and writes at host addresses through one constant all-memory
 * segment: FFM's liveness check of such a scope can never fail, yet it cost two dependent loads per access,
 * the hottest instructions of the single-thread loop after the ring went direct. The bounds and the
 * read-only flag are checked here, once per copy, as FFM would.
 *
 * <p>The two ranges must not overlap (frames are copied between a guest buffer and a private one, or
 * between two guests' buffers); the small path reads both words before it writes, but a byte loop or a
 * caller that relies on memmove semantics should use {@code MemorySegment.copy}.
 */
public final class FrameCopy {
    /** Largest copy that takes the load/store path (two words). */
    public static final int SMALL = 16;

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    /** All of the address space in the global scope: what copies between global-scope segments go through. */
    private static final MemorySegment HOST = HostMemory.ALL;

    private FrameCopy() {}

    /** Copies {@code len} bytes from {@code src} at {@code srcOffset} to {@code dst} at {@code dstOffset}. */
    public static void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long len) {
        // Straight-line and small, so that C2 inlines it into the caller: a copy compiled on its own is not
        // inlined any more once its code is large ("already compiled into a big method"), and then it can
        // neither share the caller's checks of the two segments nor use the caller's types. A loop would
        // be unrolled into exactly such code. For the same reason each path is a method of its own: the
        // whole was over C2's size limit for a hot call (FreqInlineSize, 325 bytecodes) once the host path
        // was added, and every copy became a call. 8..16 bytes: the first and the last word (they overlap
        // below 16 bytes and write the same values twice: the two ranges do not overlap each other).
        if (len >= 8 && len <= SMALL) {
            if (src == HOST && dst == HOST) {
                // Both at host addresses (HostMemory#view): nothing of either segment to check here. The ranges are
                // the callers', checked where they were handed out as (ALL, host address, length), as every reader
                // of such a frame relies on (HostMemory's class comment): a ring descriptor checked against its
                // region, a private buffer of known size. The copy is then the four accesses alone.
                copyAtHost(srcOffset, dstOffset, len - 8);
            } else {
                copySmall(src, srcOffset, dst, dstOffset, len);
            }
        } else {
            copyOther(src, srcOffset, dst, dstOffset, len);
        }
    }

    /** 8..16 bytes between two segments, checked as FFM would check them. */
    private static void copySmall(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long len) {
        long last = len - 8;
        if (HostMemory.isDirect(src) && HostMemory.isDirect(dst)) {   // never closed: see the class comment
            Objects.checkFromIndexSize(srcOffset, len, src.byteSize());
            Objects.checkFromIndexSize(dstOffset, len, dst.byteSize());
            if (dst.isReadOnly()) throw new IllegalArgumentException("copy into a read-only segment");
            copyAtHost(src.address() + srcOffset, dst.address() + dstOffset, last);
            return;
        }
        long w0 = src.get(LONG, srcOffset), w1 = src.get(LONG, srcOffset + last);
        Objects.checkFromIndexSize(dstOffset, len, dst.byteSize());   // all or nothing: no half-written frame
        dst.set(LONG, dstOffset, w0);
        dst.set(LONG, dstOffset + last, w1);
    }

    /** The first and the last word of a copy of {@code last + 8} bytes (8..16) from host address {@code s} to {@code d}. */
    private static void copyAtHost(long s, long d, long last) {
        // Masked to the user half of the address space (a no-op for any address a segment has): lets C2
        // drop HOST's own bounds check of the four accesses (HostMemory#host says why it changes nothing).
        long s0 = HostMemory.host(s), d0 = HostMemory.host(d);
        long s1 = HostMemory.host(s0 + last), d1 = HostMemory.host(d0 + last);
        long w0 = HOST.get(LONG, s0), w1 = HOST.get(LONG, s1);
        HOST.set(LONG, d0, w0);
        HOST.set(LONG, d1, w1);
    }

    private static void copyOther(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long len) {
        if (len >= 0 && len < 8) {
            for (long i = 0; i < len; i++) dst.set(BYTE, dstOffset + i, src.get(BYTE, srcOffset + i));
        } else {
            MemorySegment.copy(src, srcOffset, dst, dstOffset, len);   // also throws for a negative length
        }
    }
}
