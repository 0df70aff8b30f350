package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import dev.jvbus.core.testing.fuzz.GuardedMemory;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Fuzz target: virtio-net's transmit path under a hostile driver's {@code virtio_net_hdr}s. The input is a
 * driver that negotiates some of VERSION_1, CSUM, INDIRECT_DESC and EVENT_IDX, then sends tx buffers whose
 * 12-byte header (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers) and frame it
 * chooses, laid out in one descriptor, header apart, split anywhere (the header too) or indirect, kicking
 * when it likes. The real device (its tx worker thread, the real switch) carries them to a recording port.
 * An oracle written apart from the device says what must become of each buffer, in order:
 * <ul>
 *   <li>shorter than the header: the device needs a reset, with a tx rule as its reason (nothing else may
 *       reset it; nothing after it is accounted);
 *   <li>a frame longer than MTU + 18: dropped as too big; a GSO type: dropped (the target negotiates no HOST_TSO/USO,
 *       whose frames VirtioNetOffloadTest and KernelSegmentationTest cover); NEEDS_CSUM
 *       whose checksum field lies past the frame: dropped as a bad checksum; each counted by the device; a driver
 *       without CSUM has its header ignored (flags and GSO type say nothing then, by the spec);
 *   <li>otherwise sent: a runt (under 14 bytes) or a foreign source is dropped by the switch and counted on the
 *       device's port; every other frame reaches the recorder byte for byte, with NEEDS_CSUM's field completed
 *       (CSUM negotiated) as RFC 1071 says (the oracle sums on its own) and the driver's buffer left as it was.
 * </ul>
 * Also: no byte outside guest memory changes (guard bands), and the device, reset after each input, serves
 * the next one.
 */
final class NetTxTarget {
    private static final long G = 0x4000_0000L, MEM = 512 << 10;
    private static final long DESC = G, AVAIL = G + 0x1000, USED = G + 0x2000;       // tx ring, up to 64 entries
    private static final long RX_DESC = G + 0x3000, RX_AVAIL = G + 0x4000, RX_USED = G + 0x5000;
    private static final long BUFS = G + 0x8000, SLOT = 4096, TABLES = G + 0x50000;
    private static final int HDR = 12, MAX_FRAME = 1500 + VirtioNetDevice.L2_OVERHEAD;
    private static final long RECORDER_MAC = MacAddress.parse("02:00:00:00:ff:01");
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private static GuardedMemory mem;
    private static Device dut;
    private static L2Switch sw;
    private static Recorder recorder;
    private static EventFd kick, call, rxKick, rxCall;

    /** What the driver sent, and so what the oracle expects. */
    private record Sent(int total, byte[] header, byte[] frame) {
        int flags() { return header[0] & 0xff; }
        int gso() { return header[1] & 0xff; }
        int csumStart() { return (header[6] & 0xff) | (header[7] & 0xff) << 8; }
        int csumOffset() { return (header[8] & 0xff) | (header[9] & 0xff) << 8; }
    }

    /** A switch port that keeps what it is given. */
    private static final class Recorder implements NetPort {
        final List<byte[]> frames = new ArrayList<>();
        @Override public String name() { return "fuzz-recorder"; }
        @Override public synchronized DropReason deliver(MemorySegment frame, long offset, int length) {
            frames.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            return null;
        }
        synchronized List<byte[]> taken() {
            List<byte[]> out = new ArrayList<>(frames);
            frames.clear();
            return out;
        }
    }

    static synchronized void run(byte[] bytes) throws Exception {
        if (mem == null) {
            mem = new GuardedMemory("fuzz-net-tx", new long[] {G}, new long[] {MEM});
            Container box = Bus.withDiscoveredModels().createContainer("fuzz-net-tx");
            dut = box.addDevice(VirtioNetModel.TYPE);
            sw = Networks.of(box).getOrCreate("default");
            recorder = new Recorder();
            sw.join(recorder, RECORDER_MAC);
            kick = EventFd.create();
            call = EventFd.create();
            rxKick = EventFd.create();
            rxCall = EventFd.create();
        }
        mem.reset();
        recorder.taken();
        FuzzInput in = new FuzzInput(bytes);
        VirtioNetDevice fn;
        List<Sent> sent = new ArrayList<>();
        long[] drops0, port0;
        try (Attachment a = dut.attach("fuzz", DeviceObserver.NONE)) {
            a.writeStatus(ACKNOWLEDGE | DRIVER);
            int pick = in.u8();
            long want = VirtioFeatures.VERSION_1.mask()
                    | ((pick & 1) != 0 ? VirtioNetFeatures.CSUM.mask() : 0)
                    | ((pick & 2) != 0 ? VirtioFeatures.INDIRECT_DESC.mask() : 0)
                    | ((pick & 4) != 0 ? VirtioFeatures.EVENT_IDX.mask() : 0);
            a.ackFeatures(a.offeredFeatures() & want);
            a.addStatus(FEATURES_OK);
            long f = a.negotiatedFeatures();
            int size = 2 << in.below(6);
            a.setMemory(mem.memory());
            SplitVirtqueueDriver txq = SplitVirtqueueDriver.create(1, size, DESC, AVAIL, USED, mem.memory(),
                    VirtioFeatures.EVENT_IDX.in(f), VirtioFeatures.INDIRECT_DESC.in(f), false, Notifier.of(kick));
            a.setQueue(new QueueConfig(0, 8, RX_DESC, RX_AVAIL, RX_USED));
            a.setQueue(new QueueConfig(1, size, DESC, AVAIL, USED));
            a.setDoorbells(0, rxKick, Notifier.of(rxCall));
            a.setDoorbells(1, kick, Notifier.of(call));
            a.addStatus(DRIVER_OK);
            fn = (VirtioNetDevice) a.function();
            drops0 = deviceDrops(fn);
            port0 = portDrops();
            mac = MacAddress.fromBytes(a.readConfig(VirtioNetModel.CONFIG_MAC, 6));

            BufferList list = new BufferList(8);
            int[] slotOfHead = new int[size];
            List<Integer> free = new ArrayList<>();
            for (int s = 0; s < size; s++) free.add(s);
            for (int step = 0; in.more() && step < 48 && !needsReset(); step++) {
                switch (in.below(4)) {
                    case 0, 1 -> {
                        reclaim(txq, free, slotOfHead);
                        if (free.isEmpty() || txq.freeDescriptors() < 4) break;
                        int slot = free.removeFirst();
                        Sent s = buffer(in, mac, BUFS + slot * SLOT);
                        int head = add(in, txq, list, BUFS + slot * SLOT, s.total(), VirtioFeatures.INDIRECT_DESC.in(f), TABLES + slot * 256L);
                        if (head < 0) { free.add(slot); break; }
                        slotOfHead[head] = slot;
                        sent.add(s);
                    }
                    case 2 -> txq.kickIfNeeded();
                    default -> kick.signal();   // a kick the device did not ask for
                }
            }
            txq.kickIfNeeded();
            kick.signal();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (txq.outstanding() > 0 && !needsReset()) {
                reclaim(txq, free, slotOfHead);
                if (txq.outstanding() == 0) break;
                if (System.nanoTime() > deadline) throw new AssertionError("the device took no tx buffer for 20 s: " + dut);
                LockSupport.parkNanos(50_000);
            }
            check(sent, fn, drops0, port0, VirtioNetFeatures.CSUM.in(f));
        }
        mem.assertGuardsIntact();
        if (dut.holder().isPresent()) throw new AssertionError("the device was not released: " + dut);
    }

    private static boolean needsReset() {
        return dut.needsResetReason().isPresent();
    }

    /** A header and a frame, written at {@code at}: mostly plausible values, sometimes anything. */
    private static Sent buffer(FuzzInput in, long mac, long at) {
        byte[] h = new byte[HDR];
        h[0] = (byte) (in.below(4) == 0 ? in.u8() : in.below(4));             // flags: NEEDS_CSUM, DATA_VALID
        h[1] = (byte) (in.below(8) == 0 ? in.u8() : 0);                        // gso_type
        int len = switch (in.below(6)) {
            case 0 -> in.below(20);                                            // runts, and less than a header
            case 1 -> MAX_FRAME - 2 + in.below(5);                             // around the largest
            case 2 -> in.below(3000);
            default -> 14 + in.below(200);
        };
        int csumStart = in.below(4) == 0 ? in.u16() : in.below(Math.max(1, len));
        int csumOffset = in.below(4) == 0 ? in.u16() : new int[] {6, 16, 10, 0}[in.below(4)];
        put16(h, 2, in.u16());
        put16(h, 4, in.u16());
        put16(h, 6, csumStart);
        put16(h, 8, csumOffset);
        put16(h, 10, in.u16());
        byte[] frame = new byte[len];
        for (int i = 0; i < len; i++) frame[i] = (byte) (i * 7 + len);
        if (len >= 12) {
            long dst = switch (in.below(3)) { case 0 -> 0xffff_ffff_ffffL; case 1 -> RECORDER_MAC; default -> 0x0200_0000_aa00L | in.u8(); };
            for (int i = 0; i < 6; i++) frame[i] = (byte) (dst >>> (8 * (5 - i)));
            long src = in.below(8) == 0 ? 0x0200_0000_bb00L | in.u8() : mac;
            for (int i = 0; i < 6; i++) frame[6 + i] = (byte) (src >>> (8 * (5 - i)));
        }
        int total = HDR + len;
        boolean shortOne = in.below(16) == 0;                                  // shorter than its header
        if (shortOne) total = in.below(HDR);
        MemorySegment buf = mem.at(at, SLOT);
        MemorySegment.copy(h, 0, buf, ValueLayout.JAVA_BYTE, 0, HDR);
        MemorySegment.copy(frame, 0, buf, ValueLayout.JAVA_BYTE, HDR, Math.min(len, (int) SLOT - HDR));
        return new Sent(total, h, shortOne ? new byte[0] : Arrays.copyOf(frame, Math.min(len, (int) SLOT - HDR)));
    }

    private static void put16(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >>> 8);
    }

    /** The buffer as one descriptor, header apart, split at a point the input picks, or indirect. */
    private static int add(FuzzInput in, SplitVirtqueueDriver q, BufferList list, long addr, int total, boolean indirect, long table)
            throws QueueFault {
        list.clear();
        if (total > SLOT) total = (int) SLOT;   // the frame was cut to the slot too
        switch (in.below(indirect ? 4 : 3)) {
            case 0 -> list.readable(addr, total);
            case 1 -> {
                if (total <= HDR) list.readable(addr, total);
                else list.readable(addr, HDR).readable(addr + HDR, total - HDR);
            }
            case 2 -> {
                int cut = total == 0 ? 0 : in.below(total);
                int cut2 = cut + (total - cut == 0 ? 0 : in.below(total - cut));
                if (cut > 0) list.readable(addr, cut);
                if (cut2 > cut) list.readable(addr + cut, cut2 - cut);
                if (total > cut2) list.readable(addr + cut2, total - cut2);
                if (list.count() == 0) list.readable(addr, 0);
            }
            default -> {
                if (total <= HDR) list.readable(addr, total);
                else list.readable(addr, HDR).readable(addr + HDR, total - HDR);
                return q.addIndirect(list, table);
            }
        }
        return q.add(list);
    }

    private static void reclaim(SplitVirtqueueDriver q, List<Integer> free, int[] slotOfHead) throws QueueFault {
        for (long e; (e = q.pollUsed()) >= 0; ) free.add(slotOfHead[SplitVirtqueueDriver.usedId(e)]);
    }

    private static long[] deviceDrops(VirtioNetDevice fn) {
        VirtioNetStats s = fn.stats();
        return new long[] {s.txDropTooBig(), s.txDropGso(), s.txDropBadCsum()};
    }

    private static long[] portDrops() {
        long runt = 0, spoofed = 0;
        for (PortStats p : sw.stats()) {
            if (p.port().equals(recorder.name())) continue;
            runt += p.drops().getOrDefault(DropReason.RUNT, 0L);
            spoofed += p.drops().getOrDefault(DropReason.SPOOFED_SOURCE, 0L);
        }
        return new long[] {runt, spoofed};
    }

    /**
     * The oracle: what must have become of each buffer, against what the device and the switch did. {@code csum}:
     * the driver negotiated CSUM; without it (and without HOST_*, which this target never negotiates) its header says
     * nothing by the spec, and the device does not read it: flags and GSO type are ignored.
     */
    private static void check(List<Sent> sent, VirtioNetDevice fn, long[] drops0, long[] port0, boolean csum) {
        long tooBig = 0, gso = 0, badCsum = 0, runt = 0, spoofed = 0;
        List<byte[]> expected = new ArrayList<>();
        boolean fault = false;
        for (Sent s : sent) {
            if (s.total() < HDR) {
                fault = true;
                break;
            }
            int len = s.total() - HDR;
            if (len > MAX_FRAME) { tooBig++; continue; }
            if (csum && s.gso() != 0) { gso++; continue; }
            byte[] out = s.frame().clone();
            if (csum && (s.flags() & 1) != 0) {
                if ((long) s.csumStart() + s.csumOffset() + 2 > len) { badCsum++; continue; }
                complete(out, s.csumStart(), s.csumOffset());
            }
            if (len < 14) { runt++; continue; }
            if (!Arrays.equals(out, 6, 12, MacAddress.toBytes(mac), 0, 6)) { spoofed++; continue; }
            expected.add(out);
        }
        String reason = dut.needsResetReason().orElse(null);
        if (fault != (reason != null))
            throw new AssertionError(fault ? "a buffer shorter than its header did not reset the device" : "the device needs a reset: " + reason);
        if (fault) {
            if (!reason.contains("virtio_net_hdr")) throw new AssertionError("reset for another reason: " + reason);
            return;   // what the worker did before the faulty buffer is its business; nothing after it is
        }
        long[] d = deviceDrops(fn), p = portDrops();
        long[] want = {tooBig, gso, badCsum};
        for (int i = 0; i < 3; i++)
            if (d[i] - drops0[i] != want[i]) throw new AssertionError("device drops " + Arrays.toString(d) + " - " + Arrays.toString(drops0) + " != " + Arrays.toString(want));
        if (p[0] - port0[0] != runt || p[1] - port0[1] != spoofed)
            throw new AssertionError("switch drops runt/spoofed " + (p[0] - port0[0]) + "/" + (p[1] - port0[1]) + ", oracle " + runt + "/" + spoofed);
        List<byte[]> got = recorder.taken();
        if (got.size() != expected.size()) throw new AssertionError("recorder got " + got.size() + " frames, oracle " + expected.size());
        for (int i = 0; i < got.size(); i++)
            if (!Arrays.equals(got.get(i), expected.get(i))) throw new AssertionError("frame " + i + " differs from the oracle's");
    }

    /** The device's MAC as the driver read it from config space, this input. */
    private static long mac;

    /** RFC 1071 over [start, end), the field seeded as the driver left it, stored big-endian; 0 as 0xffff. */
    private static void complete(byte[] f, int start, int off) {
        long sum = 0;
        int i = start;
        for (; i + 1 < f.length; i += 2) sum += ((f[i] & 0xff) << 8) | (f[i + 1] & 0xff);
        if (i < f.length) sum += (f[i] & 0xff) << 8;
        while ((sum >>> 16) != 0) sum = (sum & 0xffff) + (sum >>> 16);
        int c = ~(int) sum & 0xffff;
        if (c == 0) c = 0xffff;
        f[start + off] = (byte) (c >>> 8);
        f[start + off + 1] = (byte) c;
    }
}
