package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Fds;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The front-end's memory as vhost-user describes it: regions that each have a guest physical
 * address (what descriptors carry) and a front-end user address (what SET_VRING_ADDR carries),
 * mapped from the fds the front-end passed. The session owns the current table; tables derived by
 * ADD/REM_MEM_REG share unchanged mappings, and {@link #retire} releases what the new one dropped.
 * Unmapping closes a shared arena: a worker still touching it gets an exception, never a crash.
 */
final class MemoryTable implements AutoCloseable {
    /** One mapped region. */
    record Mapped(Message.Region region, int fd, Arena arena, MemorySegment segment) { }

    private final List<Mapped> mapped;
    private final GuestMemory guestMemory;

    private MemoryTable(List<Mapped> mapped) {
        this.mapped = List.copyOf(mapped);
        List<MemoryRegion> regions = new ArrayList<>();
        for (Mapped m : mapped) regions.add(new MemoryRegion(m.region.guestAddress(), m.region.size(), m.segment));
        this.guestMemory = GuestMemory.of(regions);
    }

    static MemoryTable empty() {
        return new MemoryTable(List.of());
    }

    /**
     * Maps regions from their fds (taking ownership of every fd, also on failure).
     *
     * @throws VhostUserException if a region is empty, overlaps another (in guest or user space),
     *         wraps, or its fd is not a mappable file large enough for offset + size
     */
    static MemoryTable map(List<Message.Region> regions, int[] fds) throws VhostUserException {
        List<Mapped> out = new ArrayList<>();
        try {
            for (int i = 0; i < regions.size(); i++) out.add(mapOne(regions.get(i), fds[i]));
            fds = null; // owned by the Mapped entries now
            MemoryTable t = new MemoryTable(out);
            t.checkUserSpace();
            return t;
        } catch (VhostUserException | RuntimeException e) {
            for (Mapped m : out) { m.arena.close(); Fds.close(m.fd); }
            if (fds != null) for (int i = out.size(); i < fds.length; i++) Fds.close(fds[i]);
            if (e instanceof IllegalArgumentException iae) throw VhostUserException.refuse("memory table: " + iae.getMessage());
            throw e;
        }
    }

    /** The table with one more region (ADD_MEM_REG); this table is left as it was (the caller closes it). */
    MemoryTable with(Message.Region region, int fd) throws VhostUserException {
        if (mapped.size() >= Wire.MAX_MEM_SLOTS) {
            Fds.close(fd);
            throw VhostUserException.refuse("ADD_MEM_REG: all " + Wire.MAX_MEM_SLOTS + " memory slots are in use");
        }
        Mapped added = mapOne(region, fd);
        List<Mapped> all = new ArrayList<>(mapped);
        all.add(added);
        try {
            MemoryTable t = new MemoryTable(all);
            t.checkUserSpace();
            return t;
        } catch (VhostUserException | IllegalArgumentException e) {
            added.arena.close();
            Fds.close(fd);
            throw e instanceof VhostUserException v ? v : VhostUserException.refuse("ADD_MEM_REG: " + e.getMessage());
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

    private static Mapped mapOne(Message.Region r, int fd) throws VhostUserException {
        if (r.size() <= 0) { Fds.close(fd); throw VhostUserException.refuse("memory region of size " + r.size()); }
        if (r.mmapOffset() < 0) { Fds.close(fd); throw VhostUserException.refuse("memory region at negative mmap offset"); }
        FdStat st;
        try {
            st = FdStat.of(fd);
        } catch (RuntimeException e) {
            Fds.close(fd);
            throw VhostUserException.refuse("memory region fd cannot be inspected: " + e.getMessage());
        }
        if (!st.mappable()) {
            Fds.close(fd);
            throw VhostUserException.refuse("memory region fd is a " + st.kind() + ", not a mappable file");
        }
        if (Long.compareUnsigned(r.mmapOffset() + r.size(), st.size()) > 0 || r.mmapOffset() + r.size() < 0) {
            Fds.close(fd);
            throw VhostUserException.refuse("memory region [offset " + r.mmapOffset() + ", +" + r.size()
                    + ") beyond its file of " + st.size() + " bytes");
        }
        Arena arena = Arena.ofShared();
        try {
            return new Mapped(r, fd, arena, Memfd.map(fd, r.mmapOffset(), r.size(), arena));
        } catch (RuntimeException e) {
            arena.close();
            Fds.close(fd);
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
                if (Long.compareUnsigned(a.userAddress(), b.userAddress() + b.size()) < 0
                        && Long.compareUnsigned(b.userAddress(), a.userAddress() + a.size()) < 0)
                    throw VhostUserException.refuse("memory regions overlap in user space");
            }
        }
    }

    GuestMemory guestMemory() {
        return guestMemory;
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
        for (Mapped m : old.mapped) {
            if (!next.mapped.contains(m)) {
                m.arena.close();
                Fds.close(m.fd);
            }
        }
    }

    /** Unmaps every region and closes their fds. */
    @Override
    public void close() {
        for (Mapped m : mapped) {
            m.arena.close();
            Fds.close(m.fd);
        }
    }
}
