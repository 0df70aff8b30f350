package dev.jvbus.core.memory;

import dev.jvbus.core.sys.MappingLifetime;
import dev.jvbus.core.sys.ShrinkableFile;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One contiguous piece of guest memory: guest-physical (or client-virtual) range
 * {@code [guestAddress, guestAddress + size)} backed by {@code segment}.
 *
 * <p>{@code segment.byteSize()} equals {@code size}; the segment is usually a shared mapping
 * of a memfd that the other party also maps. Offsets handed out by {@link GuestMemory}
 * are relative to {@code segment}.
 *
 * <p>{@code lifetime} is set when a connector unmaps the segment itself once every user is gone (a
 * mapping of a peer's file in the global scope, {@link MappingLifetime}); users that touch it from other
 * threads hold it ({@link GuestMemory#hold()}). Null: the segment's own scope says when it goes.
 *
 * <p>{@code file} is set when the segment maps a peer's file that the peer can still shrink under us
 * ({@link ShrinkableFile}): an access may then fault, and whoever catches the fault asks it whether it was
 * this region's ({@link MappedMemoryFault}). Null: the memory cannot shrink (a sealed memfd, our own memory).
 */
public record MemoryRegion(long guestAddress, long size, MemorySegment segment, MappingLifetime lifetime, ShrinkableFile file) {
    /** A region whose segment's scope says when it goes (no {@link MappingLifetime}). */
    public MemoryRegion(long guestAddress, long size, MemorySegment segment) {
        this(guestAddress, size, segment, null, null);
    }

    /** A region of memory that cannot shrink under the mapping. */
    public MemoryRegion(long guestAddress, long size, MemorySegment segment, MappingLifetime lifetime) {
        this(guestAddress, size, segment, lifetime, null);
    }

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
