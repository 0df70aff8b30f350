package dev.jvbus.core.memory;

import dev.jvbus.core.sys.MappingLifetime;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The memory a guest (or client process) shared with the bus: a small, immutable table of
 * {@link MemoryRegion}s. This class is the one place where a guest-supplied address and length
 * are checked; everything that touches guest memory goes through {@link #region(long, long)}.
 *
 * <p>Hot-path use allocates nothing: {@link #region} returns an existing region object and the
 * caller reads or copies at {@code addr - region.guestAddress()} within {@code region.segment()}.
 * A range may not straddle two regions even if they happen to be adjacent: a descriptor names
 * one contiguous buffer, and a chain that needs more uses more descriptors.
 */
public final class GuestMemory {
    private final MemoryRegion[] regions;   // sorted by guest address, non-overlapping
    private final MemoryRegion first;       // fast path: almost every guest has one region
    private final boolean canShrink;        // some region maps a file its peer can still shrink
    // Set while a VMM migrates the guest: every device write to guest memory is marked here.
    // One volatile read per write batch when not logging.
    private volatile DirtyLog dirtyLog;

    private GuestMemory(MemoryRegion[] regions) {
        this.regions = regions;
        this.first = regions.length > 0 ? regions[0] : null;
        boolean any = false;
        for (MemoryRegion r : regions) any |= r.file() != null;
        this.canShrink = any;
    }

    /** Builds a table; refuses overlapping regions (an operator or protocol error, not a guest one). */
    public static GuestMemory of(List<MemoryRegion> regions) {
        List<MemoryRegion> sorted = new ArrayList<>(regions);
        sorted.sort(Comparator.comparing(MemoryRegion::guestAddress, Long::compareUnsigned));
        for (int i = 1; i < sorted.size(); i++) {
            MemoryRegion prev = sorted.get(i - 1), next = sorted.get(i);
            if (prev.endAddress() == 0 || Long.compareUnsigned(prev.endAddress(), next.guestAddress()) > 0)
                throw new IllegalArgumentException("memory regions overlap: 0x" + Long.toHexString(prev.guestAddress())
                        + " and 0x" + Long.toHexString(next.guestAddress()));
        }
        return new GuestMemory(sorted.toArray(MemoryRegion[]::new));
    }

    public static GuestMemory of(MemoryRegion... regions) {
        return of(List.of(regions));
    }

    /** A table with no regions: every translation fails. */
    public static GuestMemory empty() {
        return new GuestMemory(new MemoryRegion[0]);
    }

    public List<MemoryRegion> regions() {
        return List.of(regions);
    }

    /**
     * The region holding all of {@code [addr, addr+len)}.
     *
     * @throws GuestMemoryException if the range is not wholly inside one region (or len is negative)
     */
    public MemoryRegion region(long addr, long len) throws GuestMemoryException {
        MemoryRegion r = first;
        if (r != null && r.contains(addr, len)) return r;
        for (int i = 1; i < regions.length; i++) {
            r = regions[i];
            if (r.contains(addr, len)) return r;
        }
        throw new GuestMemoryException(addr, len, len < 0 ? "negative length" : "address range outside guest memory");
    }

    /**
     * True if some region maps a file that its peer can still shrink under us: an access to this memory may fault
     * (SIGBUS, reported late: {@link MappedMemoryFault#surface()}), and whoever touches it on another party's
     * behalf must make the fault surface where it can tell whose it is.
     */
    public boolean canShrink() {
        return canShrink;
    }

    /**
     * True if the file behind some region is now shorter than its mapping: the evidence that a memory fault was
     * this memory's ({@link MappedMemoryFault#in}). A statx per such region: for the fault path, not the hot path.
     */
    public boolean shrunk() {
        if (!canShrink) return false;
        for (MemoryRegion r : regions) if (r.file() != null && r.file().shrunk()) return true;
        return false;
    }

    /**
     * A hold on every mapping of this memory that its owner unmaps itself ({@link MappingLifetime}), for a
     * user that touches it from another thread and may outlive a bounded stop: a queue worker (released when
     * its thread exits), an rx gate with a delivery stuck inside. Setup-time only (allocates). The caller must
     * know the memory is mapped now (its owner has not let go: a ring being started, a stop being made).
     *
     * @return {@link MemoryHold#NONE} if no region has a lifetime
     * @throws IllegalStateException if a region is unmapped already (nothing was held)
     */
    public MemoryHold hold() {
        int n = 0;
        for (MemoryRegion r : regions) if (r.lifetime() != null) n++;
        if (n == 0) return MemoryHold.NONE;
        MappingLifetime.Hold[] holds = new MappingLifetime.Hold[n];
        int i = 0;
        try {
            for (MemoryRegion r : regions) if (r.lifetime() != null) holds[i++] = r.lifetime().hold();
        } catch (IllegalStateException e) {
            while (i > 0) holds[--i].release();
            throw e;
        }
        return new MemoryHold(holds);
    }

    /**
     * Starts (non-null) or stops (null) dirty logging of device writes to this memory. To replace a
     * log under running writers, set the new one here first, then {@link DirtyLog#retire} the old one.
     */
    public void setDirtyLog(DirtyLog log) {
        this.dirtyLog = log;
    }

    public DirtyLog dirtyLog() {
        return dirtyLog;
    }

    /**
     * The device wrote {@code [addr, addr+len)}: mark it in the dirty log if one is set. Every path
     * that writes guest memory for the device (rx data, used ring) calls this.
     */
    public void markDirty(long addr, long len) {
        DirtyLog log = dirtyLog;
        // A retired log refuses the mark. Its replacement was set here before it was retired, so the
        // next read finds it (or null: logging stopped). Finding the same log again means it was retired
        // without a replacement here: nobody reads marks made through this memory any more.
        while (log != null && !log.mark(addr, len)) {
            DirtyLog next = dirtyLog;
            if (next == log) return;
            log = next;
        }
    }

    /** A bounded view of {@code [addr, addr+len)}; allocates, so for setup (ring areas), not per buffer. */
    public MemorySegment slice(long addr, long len) throws GuestMemoryException {
        MemoryRegion r = region(addr, len);
        return r.segment().asSlice(addr - r.guestAddress(), len);
    }

    /** Copies {@code len} bytes from guest memory at {@code addr} into {@code dst} at {@code dstOffset}. */
    public void copyFromGuest(long addr, MemorySegment dst, long dstOffset, long len) throws GuestMemoryException {
        MemoryRegion r = region(addr, len);
        MemorySegment.copy(r.segment(), addr - r.guestAddress(), dst, dstOffset, len);
    }

    /** Copies {@code len} bytes from {@code src} at {@code srcOffset} into guest memory at {@code addr}. */
    public void copyToGuest(MemorySegment src, long srcOffset, long addr, long len) throws GuestMemoryException {
        MemoryRegion r = region(addr, len);
        MemorySegment.copy(src, srcOffset, r.segment(), addr - r.guestAddress(), len);
        markDirty(addr, len);
    }

    public byte readByte(long addr) throws GuestMemoryException {
        MemoryRegion r = region(addr, 1);
        return r.segment().get(ValueLayout.JAVA_BYTE, addr - r.guestAddress());
    }

    public int readInt(long addr) throws GuestMemoryException {
        MemoryRegion r = region(addr, 4);
        return r.segment().get(ValueLayout.JAVA_INT_UNALIGNED, addr - r.guestAddress());
    }

    public long readLong(long addr) throws GuestMemoryException {
        MemoryRegion r = region(addr, 8);
        return r.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, addr - r.guestAddress());
    }

    public void writeInt(long addr, int value) throws GuestMemoryException {
        MemoryRegion r = region(addr, 4);
        r.segment().set(ValueLayout.JAVA_INT_UNALIGNED, addr - r.guestAddress(), value);
        markDirty(addr, 4);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("GuestMemory[");
        for (MemoryRegion r : regions)
            sb.append(" 0x").append(Long.toHexString(r.guestAddress())).append('+').append(r.size());
        return sb.append(" ]").toString();
    }
}
