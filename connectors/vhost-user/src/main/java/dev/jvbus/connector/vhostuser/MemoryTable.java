package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.OwnedFds;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The front-end's memory as vhost-user describes it: regions that each have a guest physical
 * address (what descriptors carry) and a front-end user address (what SET_VRING_ADDR carries),
 * mapped from the fds the front-end passed. The session owns the current table; tables derived by
 * ADD/REM_MEM_REG share unchanged mappings, and {@link #retire} releases what the new one dropped.
 * Regions are mapped in the global scope (rings over them take the direct path) and unmapped by their
 * {@link dev.jvbus.core.sys.MappingLifetime}: when the session let them go and every queue worker or stuck
 * delivery holding them has left, so a worker left behind never touches an unmapped page.
 *
 * <p>Fds: each region's fd must be a regular file opened O_RDWR (not O_PATH), checked with
 * {@link MappingRule#SHARED_FILE}; the fd itself is mapped, never reopened by path. A region takes
 * its fd only once it is mapped; an fd it refuses stays in the message's {@link OwnedFds}, which the
 * session closes once, whatever happened.
 *
 * <p>What remains: QEMU's and DPDK's memory files need not be sealed, so a front-end can truncate one
 * under our mapping. The next access to a page past the new end faults; the JVM turns that SIGBUS
 * into an {@link InternalError} on the accessing thread, thrown at its next safepoint poll. A region
 * of a file not sealed with F_SEAL_SHRINK carries its {@code ShrinkableFile}, so that whoever touches it
 * makes such a fault surface inside its own try and can tell whose it is ({@code MappedMemoryFault}).
 * On a device's own queue worker it becomes a fault of that device only (the poll group surfaces it
 * inside the member's call, which reports any Error as a queue fault: NEEDS_RESET); on the session thread
 * it ends that session. A frame delivered into this device's rx ring by another device's worker (the
 * switch) faults on the sender's thread, and the receiving device, its file found shorter than the
 * mapping, reports it as its own: it needs a reset, the sender goes on (TruncatedFrontEndMemoryTest).
 */
final class MemoryTable implements AutoCloseable {
    /** One mapped region: the window {@code [mmapOffset, +size)} of the front-end's file. */
    record Mapped(Message.Region region, Memfd file) {
        MemorySegment segment() { return file.segment(); }
    }

    private final List<Mapped> mapped;
    private final GuestMemory guestMemory;

    private MemoryTable(List<Mapped> mapped) {
        this.mapped = List.copyOf(mapped);
        List<MemoryRegion> regions = new ArrayList<>();
        for (Mapped m : mapped) regions.add(new MemoryRegion(m.region.guestAddress(), m.region.size(), m.segment(), m.file.lifetime(), m.file.shrinkable()));
        this.guestMemory = GuestMemory.of(regions);
    }

    static MemoryTable empty() {
        return new MemoryTable(List.of());
    }

    /**
     * Maps regions from their fds ({@code fds.get(i)} for region i); each mapped region takes its fd.
     * On failure nothing stays mapped and the fds not taken stay in {@code fds} for the caller to close.
     *
     * @throws VhostUserException if the table exceeds {@code limits}, or a region is empty, overlaps
     *         another (in guest or user space), wraps, or its fd is not a read-write regular file
     *         large enough for offset + size
     */
    static MemoryTable map(List<Message.Region> regions, OwnedFds fds, VhostUserLimits limits) throws VhostUserException {
        checkLimits("SET_MEM_TABLE", regions, limits);
        List<Mapped> out = new ArrayList<>();
        try {
            for (int i = 0; i < regions.size(); i++) out.add(mapOne(regions.get(i), fds.get(i)));
            MemoryTable t = new MemoryTable(out);
            t.checkUserSpace();
            return t;
        } catch (VhostUserException | RuntimeException e) {
            for (Mapped m : out) m.file.close();
            if (e instanceof IllegalArgumentException iae) throw VhostUserException.refuse("memory table: " + iae.getMessage());
            throw e;
        }
    }

    /** The table with one more region (ADD_MEM_REG); this table is left as it was (the caller closes it). */
    MemoryTable with(Message.Region region, OwnedFd fd, VhostUserLimits limits) throws VhostUserException {
        List<Message.Region> all = new ArrayList<>(regions());
        all.add(region);
        checkLimits("ADD_MEM_REG", all, limits);
        Mapped added = mapOne(region, fd);
        List<Mapped> next = new ArrayList<>(mapped);
        next.add(added);
        try {
            MemoryTable t = new MemoryTable(next);
            t.checkUserSpace();
            return t;
        } catch (VhostUserException | IllegalArgumentException e) {
            added.file.close();
            throw e instanceof VhostUserException v ? v : VhostUserException.refuse("ADD_MEM_REG: " + e.getMessage());
        }
    }

    /** Regions and bytes a table may map at once ({@link VhostUserLimits}); checked before anything is mapped. */
    private static void checkLimits(String request, List<Message.Region> regions, VhostUserLimits limits) throws VhostUserException {
        if (regions.size() > limits.regionsPerSession())
            throw VhostUserException.refuse(request + ": " + regions.size() + " memory regions (limit: VhostUserLimits.regionsPerSession = "
                    + limits.regionsPerSession() + ")");
        long total = 0;
        for (Message.Region r : regions) {
            // Sizes are u64 on the wire: a negative one is huge, and a sum past the limit stops before it can overflow.
            if (r.size() < 0 || r.size() > limits.bytesPerSession() - total)
                throw VhostUserException.refuse(request + ": memory regions of more than " + limits.bytesPerSession()
                        + " bytes in all (limit: VhostUserLimits.bytesPerSession; this region claims " + Long.toUnsignedString(r.size()) + ")");
            total += r.size();
        }
    }

    /** The table without the region at this guest address, user address and size (REM_MEM_REG). */
    MemoryTable without(Message.Region region) throws VhostUserException {
        List<Mapped> keep = new ArrayList<>();
        Mapped gone = null;
        for (Mapped m : mapped) {
            Message.Region r = m.region;
            if (gone == null && r.guestAddress() == region.guestAddress() && r.userAddress() == region.userAddress() && r.size() == region.size())
                gone = m;
            else keep.add(m);
        }
        if (gone == null)
            throw VhostUserException.refuse("REM_MEM_REG: no region at guest 0x" + Long.toHexString(region.guestAddress())
                    + " user 0x" + Long.toHexString(region.userAddress()) + " size " + region.size());
        return new MemoryTable(keep);
    }

    /** Maps one region; takes {@code fd} only if it succeeds (a refused fd stays the caller's, to close once). */
    private static Mapped mapOne(Message.Region r, OwnedFd fd) throws VhostUserException {
        if (r.size() <= 0) throw VhostUserException.refuse("memory region of size " + r.size());
        if (r.mmapOffset() < 0) throw VhostUserException.refuse("memory region at negative mmap offset");
        FdStat st;
        try {
            st = MappingRule.SHARED_FILE.check(fd);
        } catch (RuntimeException e) {
            throw VhostUserException.refuse("memory region " + e.getMessage());
        }
        if (Long.compareUnsigned(r.mmapOffset() + r.size(), st.size()) > 0 || r.mmapOffset() + r.size() < 0)
            throw VhostUserException.refuse("memory region [offset " + r.mmapOffset() + ", +" + r.size()
                    + ") beyond its file of " + st.size() + " bytes");
        try {
            return new Mapped(r, Memfd.adopt(fd, r.mmapOffset(), r.size(), MappingRule.SHARED_FILE));
        } catch (RuntimeException e) {
            throw VhostUserException.refuse("cannot map memory region: " + e.getMessage());
        }
    }

    private void checkUserSpace() throws VhostUserException {
        for (int i = 0; i < mapped.size(); i++) {
            Message.Region a = mapped.get(i).region;
            if (a.userAddress() + a.size() < a.userAddress() && a.userAddress() + a.size() != 0)
                throw VhostUserException.refuse("memory region wraps the user address space");
            for (int j = i + 1; j < mapped.size(); j++) {
                Message.Region b = mapped.get(j).region;
                // Distances, not ends: a region may end exactly at 2^64, where its end wraps to 0 and an
                // end-based test misses the overlap (found by MemoryTableFuzzTest). Neither region wraps
                // (checked above), so one starts inside the other exactly when its distance from the
                // other's start, unsigned, is less than the other's size.
                if (Long.compareUnsigned(a.userAddress() - b.userAddress(), b.size()) < 0
                        || Long.compareUnsigned(b.userAddress() - a.userAddress(), a.size()) < 0)
                    throw VhostUserException.refuse("memory regions overlap in user space");
            }
        }
    }

    GuestMemory guestMemory() {
        return guestMemory;
    }

    /** Bytes this table maps (each region maps only its window of the front-end's file). */
    long mappedBytes() {
        long sum = 0;
        for (Mapped m : mapped) sum += m.region.size();
        return sum;
    }

    List<Message.Region> regions() {
        return mapped.stream().map(Mapped::region).toList();
    }

    /** The highest guest address + 1, for sizing a dirty log. */
    long guestEnd() {
        long end = 0;
        for (Mapped m : mapped) end = Math.max(end, m.region.guestAddress() + m.region.size());
        return end;
    }

    /**
     * Translates a front-end user address range (ring addresses) to a guest physical address.
     *
     * @throws VhostUserException if no single region holds the whole range
     */
    long userToGuest(long userAddress, long length) throws VhostUserException {
        for (Mapped m : mapped) {
            Message.Region r = m.region;
            long off = userAddress - r.userAddress();
            if (Long.compareUnsigned(userAddress, r.userAddress()) >= 0 && Long.compareUnsigned(off, r.size()) < 0
                    && Long.compareUnsigned(length, r.size() - off) <= 0)
                return r.guestAddress() + off;
        }
        throw VhostUserException.refuse("ring address 0x" + Long.toHexString(userAddress) + " (+" + length
                + ") is outside the memory table");
    }

    /**
     * Replaces {@code old} by {@code next}: unmaps the regions of {@code old} that {@code next} does
     * not keep (ADD/REM_MEM_REG derive a table that shares the unchanged mappings).
     */
    static void retire(MemoryTable old, MemoryTable next) {
        retire(old, next, new LingeringMappings());
    }

    /** As above; a dropped region a worker that did not stop still holds is kept in {@code lingering} until it left. */
    static void retire(MemoryTable old, MemoryTable next, LingeringMappings lingering) {
        for (Mapped m : old.mapped) {
            if (!next.mapped.contains(m)) release(m, lingering);
        }
    }

    /**
     * Lets every region go (each once: a Memfd closes once however often asked): unmapped, its fd closed, now,
     * or, for a region a worker that did not stop still holds, when that worker has left ({@code lingering}).
     */
    void close(LingeringMappings lingering) {
        for (Mapped m : mapped) release(m, lingering);
    }

    @Override
    public void close() {
        close(new LingeringMappings());
    }

    private static void release(Mapped m, LingeringMappings lingering) {
        m.file.close();
        lingering.released(m.file.lifetime());
    }
}
