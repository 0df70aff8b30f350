package dev.jvbus.core.memory;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One contiguous piece of guest memory: guest-physical (or client-virtual) range
 * {@code [guestAddress, guestAddress + size)} backed by {@code segment}.
 *
 * <p>{@code segment.byteSize()} equals {@code size}; the segment is usually a shared mapping
 * of a memfd that the other party also maps. Offsets handed out by {@link GuestMemory}
 * are relative to {@code segment}.
 */
public record MemoryRegion(long guestAddress, long size, MemorySegment segment) {
    public MemoryRegion {
        Objects.requireNonNull(segment, "segment");
        if (size <= 0) throw new IllegalArgumentException("region size must be positive: " + size);
        if (segment.byteSize() != size)
            throw new IllegalArgumentException("segment is " + segment.byteSize() + " bytes, region says " + size);
        // guestAddress + size must not wrap the unsigned 64-bit space; the end is exclusive.
        if (Long.compareUnsigned(guestAddress + size, guestAddress) < 0 && guestAddress + size != 0)
            throw new IllegalArgumentException("region wraps the address space: 0x" + Long.toHexString(guestAddress) + "+" + size);
    }

    /** Exclusive end address (0 means the region ends exactly at 2^64). */
    public long endAddress() {
        return guestAddress + size;
    }

    /** True when {@code [addr, addr+len)} lies entirely in this region. Overflow-safe, unsigned. */
    public boolean contains(long addr, long len) {
        if (len < 0) return false;
        long off = addr - guestAddress;              // unsigned offset from the region start
        if (Long.compareUnsigned(addr, guestAddress) < 0) return false;
        if (Long.compareUnsigned(off, size) > 0) return false;
        return Long.compareUnsigned(len, size - off) <= 0;
    }
}
