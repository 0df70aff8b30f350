package dev.jvbus.core.testing.fuzz;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Guest memory for a fuzz target: regions carved out of one real memfd with a guard band before,
 * between and after them. The guards hold a pattern nobody writes, so "nothing outside guest memory
 * was touched" is checked by the bytes themselves, not only by trusting the bounds checks under test:
 * {@link #assertGuardsIntact()} after every input. Made once per target and {@link #reset()} before
 * each input (zeroing is cheaper than a new memfd per execution, and leaves no fd to leak).
 */
public final class GuardedMemory implements AutoCloseable {
    public static final long GUARD = 4096;
    private static final byte PATTERN = (byte) 0xA5;

    private final Memfd memfd;
    private final long[] guest;
    private final long[] size;
    private final long[] offset;       // of each region in the memfd
    private final GuestMemory memory;
    private final GuestMemory globalMemory;
    private final MemorySegment pattern;

    /** Regions at the given guest addresses and sizes (in that order in the memfd, each between guards). */
    public GuardedMemory(String name, long[] guestAddresses, long[] sizes) {
        guest = guestAddresses.clone();
        size = sizes.clone();
        offset = new long[guest.length];
        long at = GUARD;
        for (int i = 0; i < guest.length; i++) {
            offset[i] = at;
            at += size[i] + GUARD;
        }
        memfd = Memfd.create(name, at);
        MemoryRegion[] regions = new MemoryRegion[guest.length];
        for (int i = 0; i < guest.length; i++)
            regions[i] = new MemoryRegion(guest[i], size[i], memfd.segment().asSlice(offset[i], size[i]));
        memory = GuestMemory.of(regions);
        MemoryRegion[] global = new MemoryRegion[guest.length];
        for (int i = 0; i < guest.length; i++)
            global[i] = new MemoryRegion(guest[i], size[i], MemorySegment.ofAddress(regions[i].segment().address()).reinterpret(size[i]));
        globalMemory = GuestMemory.of(global);
        pattern = Arena.global().allocate(GUARD);
        pattern.fill(PATTERN);
        reset();
    }

    public GuestMemory memory() { return memory; }

    /**
     * The same regions as segments of the global scope, which a split ring accesses directly, at host
     * addresses, with its own offsets as the only bound ({@code SplitRing#direct}); the guard bands then
     * check what FFM's bounds checks no longer do. Valid until {@link #close()}: only for a target that keeps
     * this memory for the life of the JVM, as the fuzz targets do.
     */
    public GuestMemory globalMemory() { return globalMemory; }

    public int regionCount() { return guest.length; }

    public long base(int region) { return guest[region]; }

    public long size(int region) { return size[region]; }

    /** Zeroes every region and lays the guard pattern again. */
    public void reset() {
        MemorySegment all = memfd.segment();
        all.fill(PATTERN);
        for (int i = 0; i < guest.length; i++) all.asSlice(offset[i], size[i]).fill((byte) 0);
    }

    /** The host bytes of {@code [addr, addr+len)}, which must lie in one region (for the fuzzer's own writes). */
    public MemorySegment at(long addr, long len) {
        for (int i = 0; i < guest.length; i++)
            if (inRegion(i, addr, len)) return memfd.segment().asSlice(offset[i] + (addr - guest[i]), len);
        throw new IllegalArgumentException("0x" + Long.toHexString(addr) + "+" + len + " is not in one region");
    }

    /**
     * The oracle the ring's own check is compared with: {@code [addr, addr+len)} (len an unsigned u32 or
     * u64 value below 2^63) lies wholly in one region. Written apart from {@code GuestMemory}, on purpose.
     */
    public boolean contains(long addr, long len) {
        if (len < 0) return false;
        for (int i = 0; i < guest.length; i++) if (inRegion(i, addr, len)) return true;
        return false;
    }

    private boolean inRegion(int i, long addr, long len) {
        java.math.BigInteger a = new java.math.BigInteger(Long.toUnsignedString(addr));
        java.math.BigInteger start = java.math.BigInteger.valueOf(guest[i]);
        java.math.BigInteger end = start.add(java.math.BigInteger.valueOf(size[i]));
        return a.compareTo(start) >= 0 && a.add(java.math.BigInteger.valueOf(len)).compareTo(end) <= 0;
    }

    /** Every guard band still holds its pattern: no write landed outside the regions. */
    public void assertGuardsIntact() {
        MemorySegment all = memfd.segment();
        long at = 0;
        for (int i = 0; i <= guest.length; i++) {
            MemorySegment guard = all.asSlice(at, GUARD);
            long bad = guard.mismatch(pattern);
            if (bad >= 0)
                throw new AssertionError("guard band " + i + " was written at byte " + bad + " (memfd offset " + (at + bad)
                        + "): something wrote outside guest memory");
            if (i < guest.length) at = offset[i] + size[i];
        }
    }

    @Override
    public void close() {
        memfd.close();
    }
}
