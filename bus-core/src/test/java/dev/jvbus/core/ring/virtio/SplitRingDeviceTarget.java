package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import dev.jvbus.core.testing.fuzz.GuardedMemory;
import dev.jvbus.core.testing.fuzz.GuestValues;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzz target: the device side of a split ring ({@link SplitVirtqueue}) under a hostile driver. The
 * input is a program (FUZZING.md): the driver's part writes the descriptor table, indirect tables,
 * the available ring and its index, or any bytes of guest memory, between the device's pops, pushes,
 * publishes, kick toggles, unpops and save/restores. What must hold, whatever the input:
 * <ul>
 *   <li>only a {@link QueueFault} escapes, and once the queue stopped it stays stopped with that fault;
 *   <li>every popped chain lies in guest memory (checked against an oracle written apart from
 *       {@code GuestMemory}), readable before writable, within the queue size and the u32 total, and
 *       names a head that is not already in flight;
 *   <li>no byte outside the guest regions changes (guard bands), and the well-behaved ring of another
 *       guest still carries a buffer afterwards.
 * </ul>
 */
final class SplitRingDeviceTarget {
    static final long G = 0x10_0000L, MEM = 0x1_0000L;   // the main region: rings at its start
    static final long G2 = 0x20_0000L, MEM2 = 0x1000L;   // a small second region, for ranges that straddle
    static final long DATA = G + 0x2000;                 // buffers and indirect tables

    private static GuardedMemory mem;
    private static GuestValues values;
    private static HealthySplitPair neighbour;

    private final FuzzInput in;
    private final int size;
    private final boolean eventIdx, indirect, inOrder;
    private final GuestMemory memory;   // mem.memory(), or its global-scope view (features bit 4)
    private final long desc, avail, used;
    private final DescriptorChain chain;
    private SplitVirtqueue vq;
    private final List<long[]> popped = new ArrayList<>();   // {head, writable bytes}, oldest first
    private int lastPop = -1;                                // the newest pop, while it may be unpopped
    private int availIdx;                                    // what the driver's part last wrote

    private SplitRingDeviceTarget(FuzzInput in, int size, int features, long desc, long avail, long used) {
        this.in = in;
        this.size = size;
        this.eventIdx = (features & 1) != 0;
        this.indirect = (features & 2) != 0;
        this.inOrder = (features & 4) != 0;
        // Bit 4: the ring lies in memory of the global scope, so the ring reads and writes its areas directly,
        // its own offsets the only bound (SplitRing#direct); the guard bands check that mode too.
        this.memory = (features & 16) != 0 ? mem.globalMemory() : mem.memory();
        this.desc = desc;
        this.avail = avail;
        this.used = used;
        this.chain = new DescriptorChain(size);
    }

    static synchronized void run(byte[] bytes) throws Exception {
        if (mem == null) {
            mem = new GuardedMemory("fuzz-split-device", new long[] {G, G2}, new long[] {MEM, MEM2});
            values = new GuestValues(mem);
            neighbour = new HealthySplitPair();
        }
        mem.reset();
        FuzzInput in = new FuzzInput(bytes);
        int size = 1 << in.below(9);
        int features = in.u8();
        long desc = G, avail = G + (long) DESC_SIZE * size, used = (avail + AVAIL_RING + 2L * size + 2 + 3) & ~3L;
        if ((features & 8) != 0) {   // the driver places the areas itself: anywhere, misaligned, overlapping
            desc = values.address(in);
            avail = values.address(in);
            used = values.address(in);
        }
        SplitRingDeviceTarget t = new SplitRingDeviceTarget(in, size, features, desc, avail, used);
        try {
            t.vq = SplitVirtqueue.create(0, size, desc, avail, used, t.memory, t.eventIdx, t.indirect, t.inOrder, Notifier.NONE);
        } catch (QueueFault refused) {
            t.vq = null;   // refused at setup (BAD_RING_ADDRESS): the ops below only write memory
        }
        while (in.more()) t.step();
        mem.assertGuardsIntact();
        neighbour.assertCarriesOn();
    }

    private void step() throws QueueFault {
        switch (in.below(13)) {
            case 0 -> writeDesc(desc, in.below(size), values.address(in), values.length(in), in.u8(), next());
            case 1 -> chainAndOffer();
            case 2 -> u16(avail + availEntryOffset(in.below(size)), in.bit() ? in.u16() : in.below(size));
            case 3 -> {
                availIdx = in.bit() ? in.u16() : (availIdx + in.u8()) & 0xffff;
                u16(avail + AVAIL_IDX, availIdx);
            }
            case 4 -> offer(in.bit() ? in.u16() : in.below(size));
            case 5 -> { for (int n = 1 + in.below(4); n > 0 && pop(); n--) { } }
            case 6 -> push();
            case 7 -> { if (vq != null) vq.publishUsed(); }
            case 8 -> kicks();
            case 9 -> indirectTable();
            case 10 -> raw();
            case 11 -> unpop();
            default -> saveAndRestore();
        }
    }

    // ---------------------------------------------------------------- the driver's part: memory writes

    private int next() {
        return in.bit() ? in.u16() : in.below(size);
    }

    /** Writes one descriptor if its 16 bytes lie in guest memory (a driver can only write its own memory). */
    private void writeDesc(long table, int i, long addr, long len, int flags, int next) {
        MemorySegment d = seg(table + (long) DESC_SIZE * i, DESC_SIZE);
        if (d == null) return;
        d.set(LE64, DESC_ADDR, addr);
        d.set(LE32, DESC_LEN, (int) len);
        d.set(LE16, DESC_FLAGS, (short) flags);
        d.set(LE16, DESC_NEXT, (short) next);
    }

    /** A well-formed chain of 1..8 table descriptors (readable ones first) in the data area, offered at once. */
    private void chainAndOffer() {
        int n = 1 + in.below(Math.min(size, 8));
        int start = in.below(size);
        int readable = in.below(n + 1);
        for (int k = 0; k < n; k++) {
            int i = (start + k) & (size - 1);
            int flags = (k >= readable ? DESC_F_WRITE : 0) | (k + 1 < n ? DESC_F_NEXT : 0);
            writeDesc(desc, i, DATA + in.below(0x8000), 1 + in.u8(), flags, (i + 1) & (size - 1));
        }
        offer(start);
    }

    private void offer(int head) {
        u16(avail + availEntryOffset(availIdx & (size - 1)), head);
        availIdx = (availIdx + 1) & 0xffff;
        u16(avail + AVAIL_IDX, availIdx);
    }

    /** An indirect table of 1..16 entries somewhere, and a ring descriptor pointing at it. */
    private void indirectTable() {
        long table = in.bit() ? values.address(in) : DATA + (in.below(0x8000) & ~15);
        int n = 1 + in.below(16);
        for (int k = 0; k < n; k++) {
            boolean wellFormed = in.bit();
            long addr = wellFormed ? DATA + in.below(0x8000) : values.address(in);
            long len = wellFormed ? 1 + in.u8() : values.length(in);
            int flags = wellFormed ? (k + 1 < n ? DESC_F_NEXT : 0) | (in.bit() ? DESC_F_WRITE : 0) : in.u8();
            writeDesc(table, k, addr, len, flags, wellFormed ? k + 1 : in.u8());
        }
        long tableLen = in.bit() ? values.length(in) : (long) n * DESC_SIZE;
        writeDesc(desc, in.below(size), table, tableLen, DESC_F_INDIRECT | (in.bit() ? in.u8() : 0), next());
    }

    /** Up to 32 bytes of the input written anywhere in guest memory: rings, tables, buffers, the used ring. */
    private void raw() {
        boolean second = in.below(4) == 0;
        long base = second ? G2 : G, size = second ? MEM2 : MEM;
        long at = base + in.below((int) size);
        int n = (int) Math.min(in.below(33), base + size - at);
        MemorySegment s = mem.at(at, n);
        for (int k = 0; k < n; k++) s.set(ValueLayout.JAVA_BYTE, k, (byte) in.u8());
    }

    private void u16(long addr, int value) {
        MemorySegment s = seg(addr, 2);
        if (s != null) s.set(LE16, 0, (short) value);
    }

    private static MemorySegment seg(long addr, long len) {
        return mem.contains(addr, len) ? mem.at(addr, len) : null;
    }

    // ---------------------------------------------------------------- the device's part: the code under test

    private boolean pop() throws QueueFault {
        if (vq == null) return false;
        boolean got;
        try {
            got = vq.pop(chain);
        } catch (QueueFault f) {
            assertStoppedWith(f);
            return false;
        }
        if (!got) return false;
        checkChain();
        popped.add(new long[] {chain.head(), chain.writableBytes()});
        lastPop = chain.head();
        return true;
    }

    private void checkChain() {
        int head = chain.head();
        if (head < 0 || head >= size) throw new AssertionError("popped head " + head + " of a queue of " + size);
        for (long[] p : popped)
            if (p[0] == head) throw new AssertionError("head " + head + " popped while still in flight");
        int count = chain.count();
        if (count < 1 || count > size) throw new AssertionError("chain of " + count + " descriptors in a queue of " + size);
        long readable = 0, writable = 0;
        boolean seenWritable = false;
        for (int i = 0; i < count; i++) {
            long addr = chain.address(i), len = chain.length(i);
            boolean w = chain.isWritable(i);
            if (seenWritable && !w) throw new AssertionError("readable descriptor " + i + " after a writable one: " + chain);
            seenWritable |= w;
            if (!mem.contains(addr, len))
                throw new AssertionError("descriptor " + i + " at 0x" + Long.toHexString(addr) + "+" + len + " is outside guest memory");
            MemorySegment buf = chain.segment(i).asSlice(chain.offset(i), len);   // throws if the translation is off
            if (len > 0) {
                if (w) {   // a device writes what the guest let it write: first and last bytes
                    buf.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x5A);
                    buf.set(ValueLayout.JAVA_BYTE, len - 1, (byte) 0x5A);
                } else {
                    buf.get(ValueLayout.JAVA_BYTE, 0);
                    buf.get(ValueLayout.JAVA_BYTE, len - 1);
                }
            }
            if (w) writable += len;
            else readable += len;
        }
        if (readable != chain.readableBytes() || writable != chain.writableBytes())
            throw new AssertionError("chain sums " + readable + "/" + writable + " but says " + chain);
        if (readable + writable > 0xffff_ffffL) throw new AssertionError("chain of " + (readable + writable) + " bytes passed the u32 check");
    }

    /** Pushes an in-flight head (the oldest under IN_ORDER) with a length the buffer allows. */
    private void push() {
        if (vq == null || popped.isEmpty()) return;
        int pick = in.u8();
        long[] p = popped.remove(inOrder ? 0 : pick % popped.size());
        long len = (in.u32() & 0xffff_ffffL) % (p[1] + 1);
        vq.pushUsed((int) p[0], (int) len);
        lastPop = -1;
        if (in.bit()) vq.publishUsed();
    }

    private void kicks() {
        if (vq == null) return;
        switch (in.below(3)) {
            case 0 -> vq.enableKicks();
            case 1 -> vq.disableKicks();
            default -> vq.hasAvailable();
        }
    }

    private void unpop() {
        if (vq == null || lastPop < 0 || vq.isStopped()) return;
        vq.unpop(lastPop);
        popped.removeLast();
        lastPop = -1;
    }

    /**
     * Saves the quiesced queue and restores it over the same memory, the state as saved or with one field
     * changed (a state file is input too). Restoring may refuse (QueueFault); what it accepts must then hold up.
     */
    private void saveAndRestore() {
        if (vq == null || vq.isStopped()) return;
        vq.publishUsed();
        QueueState s = vq.save();
        if (in.bit()) s = mutate(s);
        try {
            vq = SplitVirtqueue.restore(s, memory, indirect, inOrder, Notifier.NONE);
        } catch (QueueFault refused) {
            vq = null;
        }
        popped.clear();   // in-flight heads come out of pop again
        lastPop = -1;
    }

    private QueueState mutate(QueueState s) {
        List<Integer> heads = new ArrayList<>(s.inFlight());
        int nextAvail = s.nextAvail(), nextUsed = s.nextUsed();
        switch (in.below(4)) {
            case 0 -> nextAvail = in.bit() ? in.u16() : in.u32();
            case 1 -> nextUsed = in.bit() ? in.u16() : in.u32();
            case 2 -> heads.add(in.bit() ? in.below(size) : in.u32());
            default -> { if (!heads.isEmpty()) heads.remove(in.below(heads.size())); }
        }
        return new QueueState(s.index(), s.kind(), s.size(), s.ready(), s.descAddr(), s.availAddr(), s.usedAddr(),
                nextAvail, nextUsed, s.eventIdx(), heads);
    }

    private void assertStoppedWith(QueueFault f) {
        if (!vq.isStopped() || vq.fault() != f) throw new AssertionError("fault " + f.getMessage() + " did not stop the queue: " + vq);
        try {
            vq.pop(chain);
            throw new AssertionError("a stopped queue popped again: " + vq);
        } catch (QueueFault again) {
            if (again != f) throw new AssertionError("a stopped queue threw another fault: " + again.getMessage() + ", first " + f.getMessage());
        }
    }

    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
}
