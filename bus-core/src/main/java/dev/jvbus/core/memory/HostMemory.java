package dev.jvbus.core.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Guest memory read at its host address, without FFM's per-access checks, where those checks prove nothing.
 *
 * <p>Every FFM access to a segment the JIT does not know as a constant pays a class check, a bounds check and a
 * liveness check of the segment's scope (dependent loads: segment, session, state). On a frame's path (the tx
 * header, the MAC addresses, the copy to the receiver) these were the largest single item of bench-vhost's 64 B
 * profile (benchmarks/README, session 12). A segment of <em>global</em> scope is never closed by FFM, so its
 * liveness check cannot fail; who unmaps such memory and why no worker meets it unmapped is
 * {@link MappingLifetime}'s and the workers' holds' business (see {@code SplitRing}'s class comment, which reads
 * the rings the same way). Its bounds are the descriptor's, already checked against the region by the ring
 * ({@code SplitVirtqueue.translate}): a frame handed on as ({@link #ALL}, host address, length) is read only
 * inside that length by every consumer, as it was inside its region segment before.
 *
 * <p>So a sender that finds its buffer {@linkplain #isDirect direct} passes {@link #ALL} and the host address on,
 * and the hot readers test {@code segment == ALL} and read through the constant, whose checks C2 folds away.
 * Any other segment (heap buffers, a closable arena's memfd) keeps its checked accesses and throws if misused.
 * A truncated peer file faults the same through either path ({@link MappedMemoryFault}).
 */
public final class HostMemory {
    /** All of the address space in the global scope: a direct buffer is at offset = its host address. */
    public static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
    private static final MemorySegment.Scope GLOBAL = Arena.global().scope();

    /** The user half of the address space: no user-space address has a bit above 55 set (see {@link #host}). */
    static final long USER_SPACE = (1L << 56) - 1;

    private HostMemory() {}

    /**
     * A host address as {@link #ALL} is accessed at: the address itself, masked to the user half of the address
     * space. No user-space address has a bit above 55 set (x86-64 with 5-level paging and arm64 stop at 57 and 52
     * bits), so the mask changes nothing; it lets C2 prove the offset far below {@code ALL}'s size and drop its
     * bounds check (a compare and a branch per access).
     */
    public static long host(long address) {
        return address & USER_SPACE;
    }

    /** True if {@code s} is native memory of the global scope: readable through {@link #ALL} at {@code s.address() + offset}. */
    public static boolean isDirect(MemorySegment s) {
        return s.isNative() && s.scope() == GLOBAL;
    }

    /** Where a hot path reads or writes {@code s}: {@link #ALL} if {@code s} is {@linkplain #isDirect direct}, else {@code s}. */
    public static MemorySegment view(MemorySegment s) {
        return isDirect(s) ? ALL : s;
    }

    /** {@code offset} in {@code s} as an offset in {@link #view}{@code (s)}: its host address if {@code s} is direct. */
    public static long offsetInView(MemorySegment s, long offset) {
        return isDirect(s) ? s.address() + offset : offset;
    }

    /**
     * {@link MemorySegment#copy(MemorySegment, long, MemorySegment, long, long)}, with the checks folded on a
     * side that is {@link #ALL}.
     */
    public static void copy(MemorySegment src, long srcOff, MemorySegment dst, long dstOff, long len) {
        if (src == ALL) {
            if (dst == ALL) MemorySegment.copy(ALL, host(srcOff), ALL, host(dstOff), len);
            else MemorySegment.copy(ALL, host(srcOff), dst, dstOff, len);
        } else if (dst == ALL) {
            MemorySegment.copy(src, srcOff, ALL, host(dstOff), len);
        } else {
            MemorySegment.copy(src, srcOff, dst, dstOff, len);
        }
    }

    /** {@code s.get(layout, at)}, through the constant when {@code s} is {@link #ALL}. */
    public static long getLong(MemorySegment s, ValueLayout.OfLong layout, long at) {
        return s == ALL ? ALL.get(layout, host(at)) : s.get(layout, at);
    }

    /** {@code s.get(layout, at)}, through the constant when {@code s} is {@link #ALL}. */
    public static int getInt(MemorySegment s, ValueLayout.OfInt layout, long at) {
        return s == ALL ? ALL.get(layout, host(at)) : s.get(layout, at);
    }

    /** {@code s.get(layout, at)}, through the constant when {@code s} is {@link #ALL}. */
    public static short getShort(MemorySegment s, ValueLayout.OfShort layout, long at) {
        return s == ALL ? ALL.get(layout, host(at)) : s.get(layout, at);
    }

    /** {@code s.get(layout, at)}, through the constant when {@code s} is {@link #ALL}. */
    public static byte getByte(MemorySegment s, ValueLayout.OfByte layout, long at) {
        return s == ALL ? ALL.get(layout, host(at)) : s.get(layout, at);
    }
}
