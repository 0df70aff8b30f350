package dev.jvbus.core.testing.fuzz;

/**
 * Addresses and lengths as a hostile peer would pick them, from a {@link FuzzInput}: mostly near the
 * places where bounds checks live (inside a region, at its ends, just below it, wrapping the 64-bit
 * space), sometimes any value at all. A raw u64 alone almost never lands in guest memory, so a
 * fuzzer would spend its time on "outside" and never reach what lies behind the check.
 */
public final class GuestValues {
    private final GuardedMemory mem;

    public GuestValues(GuardedMemory mem) {
        this.mem = mem;
    }

    /** An address: in, at the edge of, or outside a region. Takes one selector byte and then some. */
    public long address(FuzzInput in) {
        int region = in.below(2) % mem.regionCount();
        long base = mem.base(region), size = mem.size(region);
        return switch (in.below(8)) {
            case 0, 1, 2 -> base + in.below((int) Math.min(size, 1 << 30));    // inside
            case 3 -> base + size - in.u8();                                   // near (or just past) the end
            case 4 -> base - 1 - in.u8();                                      // just below
            case 5 -> -1L - in.u8();                                           // wraps the address space
            case 6 -> base + size + in.u16();                                  // past the end, in the gap
            default -> in.u64();                                               // anything
        };
    }

    /** A length: small, page-sized, zero, near 2^32, or any u32. Returned as an unsigned value. */
    public long length(FuzzInput in) {
        return switch (in.below(6)) {
            case 0, 1 -> in.u8();
            case 2 -> in.u16();
            case 3 -> 0;
            case 4 -> 0xffff_ffffL - in.u8();
            default -> in.u32() & 0xffff_ffffL;
        };
    }

}
