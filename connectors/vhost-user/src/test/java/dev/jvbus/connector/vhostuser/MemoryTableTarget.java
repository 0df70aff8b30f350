package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFds;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Fuzz target: the vhost-user memory table (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG) and its two
 * translations, from a hostile front-end's region lists and fds. Regions (guest address, size, user
 * address, mmap offset) are drawn near each other so that overlaps, wraps, ends past the file and
 * off-by-ones are common; each region's fd is a real memfd (large or small) or an eventfd, passed through
 * a real socketpair as the session receives them. What must hold:
 * <ul>
 *   <li>only {@link VhostUserException} (a refusal) escapes building a table, only {@link VhostUserException}
 *       translating a ring address and only {@link GuestMemoryException} slicing guest memory;
 *   <li>a table that was built has no two regions overlapping, in guest or in user space, and each lies within
 *       its file;
 *   <li>{@code userToGuest} and {@code guestMemory().slice} agree with an oracle written apart from them: they
 *       succeed exactly when one region holds the whole range, and a byte written through a slice lands in
 *       that region's file at mmap offset + (address - region start);
 *   <li>every fd that arrived is closed once, when its region is unmapped or the table refuses it; no other
 *       fd is touched ({@link FdLedger}).
 * </ul>
 */
final class MemoryTableTarget {
    private static final long BIG = 1 << 20, SMALL = 8192;
    private static FdLedger ledger;
    private static Memfd big, small;
    private static EventFd eventFd;
    private static final VhostUserLimits LIMITS = new VhostUserLimits(VhostUserLimits.DEFAULTS.ownerTimeout(), 4, 4L << 20);

    /** A region of the current table with the file it came from (ours, so the oracle can look inside). */
    private record Placed(Message.Region region, Memfd source) {}

    static synchronized void run(byte[] bytes) throws Exception {
        if (ledger == null) {
            ledger = new FdLedger();
            big = Memfd.create("fuzz-mem-big", BIG);
            small = Memfd.create("fuzz-mem-small", SMALL);
            eventFd = EventFd.create();
        }
        Map<Integer, String> before = ledger.snapshot();
        FuzzInput in = new FuzzInput(bytes);
        MemoryTable table = MemoryTable.empty();
        List<Placed> placed = new ArrayList<>();
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            for (int step = 0; in.more() && step < 64; step++) {
                switch (in.below(5)) {
                    case 0 -> {   // SET_MEM_TABLE
                        int n = in.below(6);
                        List<Message.Region> regions = new ArrayList<>();
                        List<Memfd> sources = new ArrayList<>();
                        int[] fds = new int[n];
                        for (int i = 0; i < n; i++) {
                            regions.add(region(in));
                            int kind = in.below(4);
                            sources.add(kind == 0 ? small : kind == 3 ? null : big);
                            fds[i] = kind == 3 ? eventFd.fd() : sources.get(i).fd();
                        }
                        try (OwnedFds got = receive(pair, fds)) {
                            MemoryTable next;
                            try {
                                next = MemoryTable.map(regions, got, LIMITS);
                            } catch (VhostUserException refused) {
                                continue;
                            }
                            MemoryTable.retire(table, next);
                            table = next;
                            placed.clear();
                            for (int i = 0; i < n; i++) placed.add(new Placed(regions.get(i), sources.get(i)));
                        }
                    }
                    case 1 -> {   // ADD_MEM_REG
                        Message.Region r = region(in);
                        int kind = in.below(4);
                        Memfd source = kind == 0 ? small : kind == 3 ? null : big;
                        try (OwnedFds got = receive(pair, kind == 3 ? eventFd.fd() : source.fd())) {
                            MemoryTable next;
                            try {
                                next = table.with(r, got.get(0), LIMITS);
                            } catch (VhostUserException refused) {
                                continue;
                            }
                            MemoryTable.retire(table, next);
                            table = next;
                            placed.add(new Placed(r, source));
                        }
                    }
                    case 2 -> {   // REM_MEM_REG: one of ours, or one made up
                        Message.Region r = !placed.isEmpty() && in.bit() ? placed.get(in.below(placed.size())).region() : region(in);
                        MemoryTable next;
                        try {
                            next = table.without(r);
                        } catch (VhostUserException refused) {
                            continue;
                        }
                        MemoryTable.retire(table, next);
                        table = next;
                        for (int i = 0; i < placed.size(); i++) if (same(placed.get(i).region(), r)) { placed.remove(i); break; }
                    }
                    case 3 -> translate(in, table, placed);
                    default -> access(in, table, placed);
                }
                checkTable(table, placed);
            }
        } finally {
            table.close();
        }
        ledger.assertNoNewFds("memory tables", before);
        ledger.assertSentinelIntact("memory tables");
    }

    /** The fds as a session receives them: sent over a real socketpair, received into one OwnedFds. */
    private static OwnedFds receive(UnixConnection.Pair pair, int... fds) {
        pair.first().sendAll(new byte[] {1}, fds);
        OwnedFds got = OwnedFds.upTo(8);
        byte[] one = new byte[1];
        pair.second().recvFully(one, 0, 1, got);
        if (got.count() != fds.length) throw new AssertionError("sent " + fds.length + " fds, received " + got.count());
        return got;
    }

    /** Values clustered where mistakes live: page multiples near each other, the files' ends, and anything. */
    private static Message.Region region(FuzzInput in) {
        long guest = address(in), size = size(in), user = address(in) + (in.bit() ? 0x7f00_0000_0000L : 0);
        long offset = switch (in.below(4)) {
            case 0, 1 -> 0;
            case 2 -> 4096L * in.below(260);
            default -> in.u64();
        };
        return new Message.Region(guest, size, user, offset);
    }

    private static long address(FuzzInput in) {
        return switch (in.below(4)) {
            case 0 -> 0;
            case 1 -> 4096L * in.below(512);
            case 2 -> -4096L * (1 + in.below(4));   // near the top: wraps
            default -> in.u64();
        };
    }

    private static long size(FuzzInput in) {
        return switch (in.below(5)) {
            case 0 -> SMALL;
            case 1 -> 4096L * (1 + in.below(256));
            case 2 -> BIG;
            case 3 -> BIG + 4096;
            default -> in.u64();
        };
    }

    private static boolean same(Message.Region a, Message.Region b) {
        return a.guestAddress() == b.guestAddress() && a.userAddress() == b.userAddress() && a.size() == b.size();
    }

    /** A ring address: near a region's user range, or anything. */
    private static void translate(FuzzInput in, MemoryTable table, List<Placed> placed) {
        long user = near(in, placed, true), len = in.below(4) == 0 ? in.u64() : in.below(0x3000);
        Long expected = null;
        for (Placed p : placed) {
            Message.Region r = p.region();
            long off = user - r.userAddress();
            if (Long.compareUnsigned(user, r.userAddress()) >= 0 && Long.compareUnsigned(off, r.size()) < 0
                    && Long.compareUnsigned(len, r.size() - off) <= 0) {
                expected = r.guestAddress() + off;
                break;
            }
        }
        long got;
        try {
            got = table.userToGuest(user, len);
        } catch (VhostUserException refused) {
            if (expected != null) throw new AssertionError("user 0x" + Long.toHexString(user) + "+" + len + " refused, but it lies in a region");
            return;
        }
        if (expected == null || got != expected)
            throw new AssertionError("user 0x" + Long.toHexString(user) + "+" + len + " -> 0x" + Long.toHexString(got) + ", oracle " + expected);
    }

    /** A guest range: sliced, and if it is ours, a byte written through it must land in the right file at the right place. */
    private static void access(FuzzInput in, MemoryTable table, List<Placed> placed) {
        long gpa = near(in, placed, false), len = in.below(4) == 0 ? in.u64() : 1 + in.below(0x3000);
        Placed holder = null;
        for (Placed p : placed) {
            Message.Region r = p.region();
            long off = gpa - r.guestAddress();
            if (Long.compareUnsigned(gpa, r.guestAddress()) >= 0 && Long.compareUnsigned(off, r.size()) < 0
                    && Long.compareUnsigned(len, r.size() - off) <= 0) {
                holder = p;
                break;
            }
        }
        MemorySegment s;
        try {
            s = table.guestMemory().slice(gpa, len);
        } catch (GuestMemoryException refused) {
            if (holder != null) throw new AssertionError("guest 0x" + Long.toHexString(gpa) + "+" + len + " refused, but it lies in a region");
            return;
        }
        if (holder == null) throw new AssertionError("guest 0x" + Long.toHexString(gpa) + "+" + len + " sliced, but no region holds it");
        if (s.byteSize() != len) throw new AssertionError("a slice of " + s.byteSize() + " bytes for " + len);
        if (len == 0) return;   // an empty range: nothing to write through
        byte mark = (byte) (1 + in.below(255));
        s.set(ValueLayout.JAVA_BYTE, 0, mark);
        long fileOffset = holder.region().mmapOffset() + (gpa - holder.region().guestAddress());
        byte there = holder.source().segment().get(ValueLayout.JAVA_BYTE, fileOffset);
        if (there != mark) throw new AssertionError("a byte written at guest 0x" + Long.toHexString(gpa) + " is not at offset " + fileOffset + " of its file");
    }

    private static long near(FuzzInput in, List<Placed> placed, boolean user) {
        if (placed.isEmpty() || in.below(4) == 0) return in.u64();
        Message.Region r = placed.get(in.below(placed.size())).region();
        long base = user ? r.userAddress() : r.guestAddress();
        return switch (in.below(4)) {
            case 0 -> base;
            case 1 -> base + r.size() - 1 - in.below(16);
            case 2 -> base + r.size() + in.below(16) - 8;
            default -> base + (in.u32() & 0xffff_ffffL) % Math.max(1, r.size());
        };
    }

    /** What a built table must be: the oracle's regions, none overlapping in either space, each within its file. */
    private static void checkTable(MemoryTable table, List<Placed> placed) {
        List<Message.Region> regions = table.regions();
        if (regions.size() != placed.size()) throw new AssertionError("the table has " + regions.size() + " regions, the oracle " + placed.size());
        for (int i = 0; i < regions.size(); i++) {
            Message.Region a = regions.get(i);
            if (placed.stream().noneMatch(p -> same(p.region(), a))) throw new AssertionError("region " + a + " unknown to the oracle");
            Memfd source = placed.stream().filter(p -> same(p.region(), a)).findFirst().get().source();
            if (source == null) throw new AssertionError("a region was mapped from an eventfd: " + a);
            if (Long.compareUnsigned(a.mmapOffset() + a.size(), source.size()) > 0 || a.mmapOffset() + a.size() < 0)
                throw new AssertionError("region " + a + " runs past its file of " + source.size() + " bytes");
            for (int j = i + 1; j < regions.size(); j++) {
                Message.Region b = regions.get(j);
                if (overlap(a.guestAddress(), a.size(), b.guestAddress(), b.size()) || overlap(a.userAddress(), a.size(), b.userAddress(), b.size()))
                    throw new AssertionError("regions overlap: " + a + " and " + b);
            }
        }
    }

    private static boolean overlap(long a, long asize, long b, long bsize) {
        java.math.BigInteger as = new java.math.BigInteger(Long.toUnsignedString(a)), bs = new java.math.BigInteger(Long.toUnsignedString(b));
        return as.compareTo(bs.add(java.math.BigInteger.valueOf(bsize))) < 0 && bs.compareTo(as.add(java.math.BigInteger.valueOf(asize))) < 0;
    }
}
