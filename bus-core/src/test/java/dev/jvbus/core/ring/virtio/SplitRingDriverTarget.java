package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import dev.jvbus.core.testing.fuzz.GuardedMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzz target: the driver side of a split ring ({@link SplitVirtqueueDriver}, the client library's)
 * under a hostile device. The input is a program (FUZZING.md): the device's part writes used elements,
 * the used index, {@code avail_event}, the used flags, or any bytes of the shared memory (also the
 * descriptor table and the available ring, which the driver must never read back); the driver's part
 * adds direct, indirect and staged chains, kicks, polls and toggles interrupts. What must hold:
 * <ul>
 *   <li>only a {@link QueueFault} escapes, and a stopped queue stays stopped with that fault;
 *   <li>every used buffer collected is one the driver has in flight (the oldest, under IN_ORDER), with
 *       a length no larger than the bytes it let the device write;
 *   <li>the free-descriptor count is exactly what the chains in flight leave free;
 *   <li>no byte outside guest memory changes, and another guest's ring still carries a buffer.
 * </ul>
 */
final class SplitRingDriverTarget {
    static final long G = 0x10_0000L, MEM = 0x1_0000L;
    static final long G2 = 0x20_0000L, MEM2 = 0x1000L;
    static final long DATA = G + 0x2000, TABLES = G + 0xA000;

    private static GuardedMemory mem;
    private static HealthySplitPair neighbour;

    private final FuzzInput in;
    private final int size;
    private final boolean eventIdx, indirect, inOrder;
    private final GuestMemory memory;   // mem.memory(), or its global-scope view (features bit 4)
    private final long desc, avail, used;
    private final BufferList list;
    private SplitVirtqueueDriver drv;
    private final List<long[]> inFlight = new ArrayList<>();   // {head, writable bytes, descriptors}, in add order
    private int usedIdx;                                       // what the device's part last wrote

    private SplitRingDriverTarget(FuzzInput in, int size, int features) {
        this.in = in;
        this.size = size;
        this.eventIdx = (features & 1) != 0;
        this.indirect = (features & 2) != 0;
        this.inOrder = (features & 4) != 0;
        // Bit 4: the ring lies in memory of the global scope, so the ring reads and writes its areas directly,
        // its own offsets the only bound (SplitRing#direct); the guard bands check that mode too.
        this.memory = (features & 16) != 0 ? mem.globalMemory() : mem.memory();
        this.desc = G;
        this.avail = G + (long) DESC_SIZE * size;
        this.used = (avail + AVAIL_RING + 2L * size + 2 + 3) & ~3L;
        this.list = new BufferList(size);
    }

    static synchronized void run(byte[] bytes) throws Exception {
        if (mem == null) {
            mem = new GuardedMemory("fuzz-split-driver", new long[] {G, G2}, new long[] {MEM, MEM2});
            neighbour = new HealthySplitPair();
        }
        mem.reset();
        FuzzInput in = new FuzzInput(bytes);
        SplitRingDriverTarget t = new SplitRingDriverTarget(in, 1 << in.below(9), in.u8());
        t.drv = SplitVirtqueueDriver.create(0, t.size, t.desc, t.avail, t.used, t.memory, t.eventIdx, t.indirect,
                t.inOrder, Notifier.NONE);
        while (in.more()) t.step();
        mem.assertGuardsIntact();
        neighbour.assertCarriesOn();
    }

    private void step() throws QueueFault {
        switch (in.below(11)) {
            case 0 -> add();
            case 1 -> addIndirect();
            case 2 -> addLater();
            case 3 -> usedElem(in.below(size), pickId(), pickLen());
            case 4 -> {
                usedIdx = in.bit() ? in.u16() : (usedIdx + in.u8()) & 0xffff;
                u16(used + USED_IDX, usedIdx);
            }
            case 5 -> complete();
            case 6 -> {
                if (inOrder && in.bit()) collect();
                else for (int n = 1 + in.below(8); n > 0 && poll(); n--) { }
            }
            case 7 -> { if (!drv.isStopped()) drv.kickIfNeeded(); }
            case 8 -> interrupts();
            case 9 -> u16(used + (in.bit() ? USED_FLAGS : usedElemOffset(size)), in.u16());   // flags or avail_event
            default -> raw();
        }
    }

    // ---------------------------------------------------------------- the driver's part: the code under test

    private void add() throws QueueFault {
        if (drv.isStopped()) return;
        int n = 1 + in.below(Math.min(size, 8));
        fill(n);
        int head = drv.add(list);
        took(head, n);
    }

    private void addIndirect() throws QueueFault {
        if (drv.isStopped() || !indirect) return;
        int n = 1 + in.below(Math.min(size, 16));
        fill(n);
        // Each in-flight indirect chain has its own table: a table is the driver's until its buffer comes back.
        long table = TABLES + 0x100L * (in.below(24));
        for (long[] f : inFlight) if (f[3] == table) return;
        int head = drv.addIndirect(list, table);
        took(head, 1);
        if (head >= 0) inFlight.getLast()[3] = table;
    }

    private void addLater() throws QueueFault {
        if (drv.isStopped()) return;
        boolean w = in.bit();
        int len = 1 + in.u8();
        int head = drv.addLater(DATA + in.below(0x8000), len, w);
        if (head >= 0) inFlight.add(new long[] {head, w ? len : 0, 1, 0});
        else if (drv.freeDescriptors() != 0) throw new AssertionError("addLater refused with " + drv.freeDescriptors() + " free");
        if (in.bit()) drv.publishAvail();
    }

    private void fill(int n) {
        list.clear();
        int readable = in.below(n + 1);
        for (int k = 0; k < n; k++) {
            long addr = DATA + in.below(0x8000);
            int len = 1 + in.u8();
            if (k < readable) list.readable(addr, len);
            else list.writable(addr, len);
        }
    }

    private void took(int head, int descriptors) {
        if (head < 0) {
            int free = drv.freeDescriptors();
            if (free >= descriptors) throw new AssertionError("add refused with " + free + " free for " + descriptors);
            return;
        }
        long writable = 0;
        for (int k = list.readableCount(); k < list.count(); k++) writable += list.length[k];
        for (long[] f : inFlight) if (f[0] == head) throw new AssertionError("head " + head + " handed out twice");
        inFlight.add(new long[] {head, writable, descriptors, 0});
        checkFree();
    }

    /** IN_ORDER: collectUsed frees what the device published, oldest first, with pollUsed's checks. */
    private void collect() throws QueueFault {
        if (drv.isStopped()) return;
        int before = drv.freeDescriptors();
        long collectedBefore = drv.buffersCollected();
        int n;
        try {
            n = drv.collectUsed();
        } catch (QueueFault f) {
            if (drv.fault() != f) throw new AssertionError("fault " + f.getMessage() + " did not stop the queue");
            // What it freed before the bad element stays freed: keep the model in step.
            long done = drv.buffersCollected() - collectedBefore;
            for (long k = 0; k < done; k++) inFlight.removeFirst();
            return;
        }
        if (n != drv.buffersCollected() - collectedBefore) throw new AssertionError("collectUsed said " + n);
        if (n > inFlight.size()) throw new AssertionError("collected " + n + " of " + inFlight.size() + " in flight");
        for (int k = 0; k < n; k++) inFlight.removeFirst();
        if (drv.freeDescriptors() < before) throw new AssertionError("collecting lost descriptors");
        checkFree();
    }

    private boolean poll() throws QueueFault {
        if (drv.isStopped()) return false;
        long e;
        try {
            e = drv.pollUsed();
        } catch (QueueFault f) {
            if (drv.fault() != f) throw new AssertionError("fault " + f.getMessage() + " did not stop the queue");
            try {
                drv.pollUsed();
                throw new AssertionError("a stopped queue polled again");
            } catch (QueueFault again) {
                if (again != f) throw new AssertionError("a stopped queue threw another fault: " + again.getMessage());
            }
            return false;
        }
        if (e < 0) return false;
        int id = SplitVirtqueueDriver.usedId(e);
        long len = SplitVirtqueueDriver.usedLength(e);
        int at = -1;
        for (int k = 0; k < inFlight.size(); k++) if (inFlight.get(k)[0] == id) at = k;
        if (at < 0) throw new AssertionError("collected id " + id + ", which is not in flight");
        if (inOrder && at != 0) throw new AssertionError("IN_ORDER: collected id " + id + " before " + inFlight.getFirst()[0]);
        long[] f = inFlight.remove(at);
        if (len > f[1]) throw new AssertionError("collected id " + id + " with " + len + " bytes, it let the device write " + f[1]);
        checkFree();
        return true;
    }

    private void checkFree() {
        long busy = 0;
        for (long[] f : inFlight) busy += f[2];
        if (drv.freeDescriptors() != size - busy)
            throw new AssertionError(drv.freeDescriptors() + " descriptors free, the chains in flight leave " + (size - busy));
        if (drv.outstanding() != inFlight.size())
            throw new AssertionError(drv.outstanding() + " outstanding, " + inFlight.size() + " in flight");
    }

    private void interrupts() {
        if (drv.isStopped()) return;
        switch (in.below(4)) {
            case 0 -> drv.enableInterrupts();
            case 1 -> drv.enableInterruptsDelayed();
            case 2 -> drv.disableInterrupts();
            default -> drv.hasUsed();
        }
    }

    // ---------------------------------------------------------------- the device's part: memory writes

    private int pickId() {
        int pick = in.below(3), value = in.u32();   // read alike whatever is in flight, so seeds stay readable
        if (pick == 0 && !inFlight.isEmpty()) return (int) inFlight.get(Integer.remainderUnsigned(value, inFlight.size()))[0];
        return pick == 1 ? Integer.remainderUnsigned(value, size) : value;
    }

    private int pickLen() {
        int pick = in.below(3), value = in.u32();
        if (pick == 1) return inFlight.isEmpty() ? 0 : (int) inFlight.get(Integer.remainderUnsigned(value, inFlight.size()))[1];
        return pick == 0 ? value & 0xff : value;
    }

    /** A well-behaved completion: the oldest (IN_ORDER) or a chosen in-flight buffer, used in full or in part. */
    private void complete() {
        if (inFlight.isEmpty()) return;
        int pick = in.u8();
        long[] f = inFlight.get(inOrder ? 0 : pick % inFlight.size());
        long len = (in.u32() & 0xffff_ffffL) % (f[1] + 1);
        usedElem(usedIdx & (size - 1), (int) f[0], (int) len);
        usedIdx = (usedIdx + 1) & 0xffff;
        u16(used + USED_IDX, usedIdx);
    }

    private void usedElem(int slot, int id, int len) {
        MemorySegment e = mem.at(used + usedElemOffset(slot), USED_ELEM_SIZE);
        e.set(LE32, USED_ELEM_ID, id);
        e.set(LE32, USED_ELEM_LEN, len);
    }

    private void raw() {
        boolean second = in.below(4) == 0;
        long base = second ? G2 : G, size = second ? MEM2 : MEM;
        long at = base + in.below((int) size);
        int n = (int) Math.min(in.below(33), base + size - at);
        MemorySegment s = mem.at(at, n);
        for (int k = 0; k < n; k++) s.set(ValueLayout.JAVA_BYTE, k, (byte) in.u8());
    }

    private void u16(long addr, int value) {
        mem.at(addr, 2).set(LE16, 0, (short) value);
    }

    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
}
