package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.*;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import dev.jvbus.core.testing.fuzz.GuardedMemory;
import dev.jvbus.core.testing.fuzz.GuestValues;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzz target: both sides of a vbus IOQ ring ({@link IoqDevice} south, {@link IoqDriver} north) over
 * one ring in guest memory, while the input also writes the ring as a hostile peer would: descriptor
 * fields (ptr, len, valid, sown, cookie), the four indices and their full flags, the shm-signal bytes,
 * the head's magics, or any bytes of it (FUZZING.md has the opcodes). Each side is used as its owner
 * would use it; what must hold for both:
 * <ul>
 *   <li>only a {@link QueueFault} escapes, and a stopped side stays stopped with that fault;
 *   <li>every buffer the device takes lies in guest memory (oracle apart from {@code GuestMemory});
 *   <li>the driver collects no more than it offered, in order, none longer than it was offered;
 *   <li>no byte outside guest memory changes, and another guest's IOQ ring still carries a buffer.
 * </ul>
 */
final class IoqRingTarget {
    static final long G = 0x4000_0000L, MEM = 0x1_0000L;
    static final long G2 = 0x4800_0000L, MEM2 = 0x1000L;
    static final long RING = G + 0x100, DATA = G + 0x8000;

    private static GuardedMemory mem;
    private static GuestValues values;
    private static HealthyIoqPair neighbour;

    private final FuzzInput in;
    private final int count;
    private final long head;
    private IoqDriver drv;
    private IoqDevice dev;
    private final ArrayDeque<Long> offered = new ArrayDeque<>();    // lengths, oldest first, handed over or staged
    private int published;                                         // of those, handed to the device
    private final List<Long> taken = new ArrayList<>();             // lengths of the buffers the device holds, oldest first

    private IoqRingTarget(FuzzInput in, int count, long head) {
        this.in = in;
        this.count = count;
        this.head = head;
    }

    static synchronized void run(byte[] bytes) throws Exception {
        if (mem == null) {
            mem = new GuardedMemory("fuzz-ioq", new long[] {G, G2}, new long[] {MEM, MEM2});
            values = new GuestValues(mem);
            neighbour = new HealthyIoqPair();
        }
        mem.reset();
        FuzzInput in = new FuzzInput(bytes);
        int count = 1 + in.below(64);
        int setup = in.u8();
        long head = (setup & 1) != 0 ? values.address(in) : RING;
        IoqRingTarget t = new IoqRingTarget(in, count, head);
        boolean suppress = (setup & 2) == 0;
        try {
            t.drv = IoqDriver.create(0, mem.memory(), head, count, Notifier.NONE, suppress);
        } catch (QueueFault refused) {
            t.drv = null;
        }
        if ((setup & 4) != 0) t.hostile();   // the head is damaged before the device attaches
        try {
            t.dev = IoqDevice.attach(0, mem.memory(), head, (setup & 8) != 0 ? 1 + in.below(64) : count, Notifier.NONE, suppress);
        } catch (QueueFault refused) {
            t.dev = null;
        }
        while (in.more()) t.step();
        mem.assertGuardsIntact();
        neighbour.assertCarriesOn();
    }

    private void step() throws QueueFault {
        switch (in.below(10)) {
            case 0 -> offer();
            case 1 -> { if (drv != null && drv.fault() == null) { publishOffers(); if (in.bit()) drv.kick(); } }
            case 2 -> { for (int n = 1 + in.below(4); n > 0 && poll(); n--) { } }
            case 3 -> complete();
            case 4 -> publishCompleted();
            case 5 -> reap();
            case 6 -> signals();
            case 7 -> saveAndRestore();
            default -> hostile();
        }
    }

    // ---------------------------------------------------------------- the driver (north), used as vbus-enet does

    private void offer() throws QueueFault {
        if (drv == null || drv.fault() != null) return;
        boolean fair = in.bit();
        long ptr = fair ? DATA + in.below(0x4000) : values.address(in);
        long len = fair ? 1 + in.u8() : values.length(in);
        boolean now = in.bit();
        boolean room = drv.hasRoom();
        boolean ok;
        try {
            ok = now ? drv.offer(in.u32(), ptr, len) : drv.offerLater(in.u32(), ptr, len);
        } catch (QueueFault f) {
            assertStopped(f, drv.fault());
            return;
        }
        if (ok != room) throw new AssertionError("offer said " + ok + " with room " + room);
        if (ok) offered.add(len);
        if (ok && now) published = offered.size();
    }

    private void publishOffers() {
        drv.publishOffers();
        published = offered.size();
    }

    private void reap() throws QueueFault {
        if (drv == null || drv.fault() != null) return;
        int before = offered.size();
        try {
            drv.reap((cookie, len) -> {
                Long offeredLen = offered.poll();
                if (offeredLen == null || published-- <= 0) throw new AssertionError("reaped a buffer never handed over");
                if (len < 0 || len > offeredLen) throw new AssertionError("reaped " + len + " bytes of a buffer of " + offeredLen);
            }, 1 + in.below(8));
        } catch (QueueFault f) {
            assertStopped(f, drv.fault());
            try {
                drv.reap((c, l) -> { }, 1);
                throw new AssertionError("a stopped driver reaped again");
            } catch (QueueFault again) {
                if (again != f) throw new AssertionError("a stopped driver threw another fault: " + again.getMessage());
            }
        }
        if (offered.size() > before) throw new AssertionError("reaping offered");
    }

    // ---------------------------------------------------------------- the device (south), used as venet does

    private boolean poll() {
        if (dev == null || dev.fault() != null) return false;
        IoqDevice.Buffer b;
        try {
            b = dev.poll();
        } catch (QueueFault f) {
            assertStopped(f, dev.fault());
            try {
                dev.poll();
                throw new AssertionError("a stopped device polled again");
            } catch (QueueFault again) {
                if (again != f) throw new AssertionError("a stopped device threw another fault: " + again.getMessage());
            }
            return false;
        }
        if (b == null) return false;
        if (b.index() < 0 || b.index() >= dev.size()) throw new AssertionError("took descriptor " + b.index() + " of " + dev.size());
        if (!mem.contains(b.address(), b.length()))
            throw new AssertionError("took a buffer at 0x" + Long.toHexString(b.address()) + "+" + b.length() + " outside guest memory");
        MemorySegment s = b.segment().asSlice(b.offset(), b.length());
        if (b.length() > 0) {
            s.get(ValueLayout.JAVA_BYTE, 0);
            s.set(ValueLayout.JAVA_BYTE, b.length() - 1, (byte) 0x5A);
        }
        taken.add(b.length());
        if (dev.inFlight() != taken.size()) throw new AssertionError(dev.inFlight() + " in flight, took " + taken.size());
        return true;
    }

    /** Completes the oldest buffer not completed yet with no more bytes than it has. */
    private void complete() throws QueueFault {
        if (dev == null || dev.fault() != null || dev.inFlight() == dev.staged()) return;
        long bufLen = taken.get(dev.staged());
        long len = Long.remainderUnsigned(in.u32() & 0xffff_ffffL, bufLen + 1);
        boolean now = in.bit();
        int staged = dev.staged();
        try {
            if (now) dev.complete(len);
            else dev.completeLater(len);
        } catch (QueueFault f) {
            assertStopped(f, dev.fault());
            return;
        }
        if (now) taken.subList(0, staged + 1).clear();
    }

    private void publishCompleted() throws QueueFault {
        if (dev == null || dev.fault() != null) return;
        int n = dev.staged();
        dev.publishCompleted();
        taken.subList(0, n).clear();
        if (in.bit()) dev.notifyDriver();
    }

    private void signals() throws QueueFault {
        ShmSignal s = in.bit() ? (dev != null ? dev.signal() : null) : (drv != null ? drv.signal() : null);
        if (s == null) return;
        switch (in.below(5)) {
            case 0 -> s.enable();
            case 1 -> s.disable();
            case 2 -> s.beginPass();
            case 3 -> s.endPass();
            default -> s.inject();
        }
    }

    /** Saves the quiesced device and restores it over the same ring, as saved or with one field changed. */
    private void saveAndRestore() {
        if (dev == null || dev.fault() != null) return;
        dev.publishCompleted();
        taken.clear();   // handed back by publishCompleted, or in flight and offered again after the restore
        QueueState s = dev.save();
        if (in.bit()) {
            List<Integer> inflight = new ArrayList<>(s.inFlight());
            int nextAvail = s.nextAvail(), nextUsed = s.nextUsed(), size = s.size();
            switch (in.below(4)) {
                case 0 -> nextAvail = in.bit() ? in.below(count) : in.u32();
                case 1 -> nextUsed = in.bit() ? in.below(count) : in.u32();
                case 2 -> inflight.add(in.bit() ? in.below(count) : in.u32());
                default -> size = 1 + in.below(64);
            }
            s = new QueueState(s.index(), s.kind(), size, s.ready(), s.descAddr(), s.availAddr(), s.usedAddr(),
                    nextAvail, nextUsed, s.eventIdx(), inflight);
        }
        try {
            dev = IoqDevice.restore(s, mem.memory(), Notifier.NONE);
        } catch (QueueFault refused) {
            dev = null;
        }
    }

    // ---------------------------------------------------------------- the hostile peer: writes to the ring

    private void hostile() {
        MemorySegment ring = mem.contains(head, ringSize(count)) ? mem.at(head, ringSize(count)) : null;
        if (ring == null) return;
        int i = in.below(count);
        long d = descOffset(i);
        switch (in.below(8)) {
            case 0 -> ring.set(LE64, d + DESC_PTR, values.address(in));
            case 1 -> ring.set(LE64, d + DESC_LEN, in.bit() ? values.length(in) : in.u64());
            case 2 -> ring.set(ValueLayout.JAVA_BYTE, d + (in.bit() ? DESC_VALID : DESC_SOWN), (byte) in.below(3));
            case 3 -> ring.set(LE32, idxOffset(in.below(2), in.bit() ? IDX_HEAD : IDX_TAIL), in.bit() ? in.below(count + 1) : in.u32());
            case 4 -> ring.set(ValueLayout.JAVA_BYTE, idxOffset(in.below(2), IDX_FULL), (byte) in.u8());
            case 5 -> {   // a device's completion of descriptor i, with any length
                ring.set(LE64, d + DESC_LEN, in.bit() ? values.length(in) : in.u8());
                ring.set(LE32, idxOffset(IDX_INUSE, IDX_HEAD), i + 1 == count ? 0 : i + 1);
                ring.set(ValueLayout.JAVA_BYTE, d + DESC_SOWN, (byte) NORTH);
            }
            case 6 -> {   // a driver's handover of descriptor i, with any buffer
                ring.set(LE64, d + DESC_PTR, values.address(in));
                ring.set(LE64, d + DESC_LEN, values.length(in));
                ring.set(ValueLayout.JAVA_BYTE, d + DESC_VALID, (byte) 1);
                ring.set(LE32, idxOffset(IDX_INUSE, IDX_TAIL), i + 1 == count ? 0 : i + 1);
                ring.set(ValueLayout.JAVA_BYTE, d + DESC_SOWN, (byte) SOUTH);
            }
            default -> {   // any bytes of the head or the descriptors: magics, count, the shm-signal
                long at = in.below((int) ringSize(count));
                int n = (int) Math.min(in.below(17), ringSize(count) - at);
                for (int k = 0; k < n; k++) ring.set(ValueLayout.JAVA_BYTE, at + k, (byte) in.u8());
            }
        }
    }

    private static void assertStopped(QueueFault f, QueueFault recorded) {
        if (recorded != f) throw new AssertionError("fault " + f.getMessage() + " did not stop the queue (recorded: " + recorded + ")");
    }

    private static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /** Another guest's IOQ ring (its own memfd): one buffer there and back after every input. */
    static final class HealthyIoqPair {
        private static final long B = 0x7000_0000L, SIZE = 0x4000, R = B + 0x100, BUF = B + 0x2000;
        private final Memfd memfd = Memfd.create("fuzz-ioq-neighbour", SIZE);
        private final IoqDriver driver;
        private final IoqDevice device;
        private long cookie;

        HealthyIoqPair() {
            GuestMemory memory = GuestMemory.of(new MemoryRegion(B, SIZE, memfd.segment()));
            try {
                driver = IoqDriver.create(0, memory, R, 8, Notifier.NONE, true);
                device = IoqDevice.attach(0, memory, R, 8, Notifier.NONE, true);
            } catch (QueueFault e) {
                throw new IllegalStateException(e);
            }
        }

        void assertCarriesOn() throws QueueFault {
            cookie++;
            if (!driver.offer(cookie, BUF, 64)) throw new AssertionError("healthy IOQ ring: no room");
            IoqDevice.Buffer b = device.poll();
            if (b == null || b.cookie() != cookie || b.length() != 64) throw new AssertionError("healthy IOQ ring: took " + b);
            device.complete(32);
            long[] got = new long[2];
            int n = driver.reap((c, l) -> { got[0] = c; got[1] = l; }, 8);
            if (n != 1 || got[0] != cookie || got[1] != 32)
                throw new AssertionError("healthy IOQ ring: reaped " + n + " (" + got[0] + ", " + got[1] + ")");
        }
    }
}
