package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.VenetWire.U16;
import static dev.jvbus.model.venet.VenetWire.U32;
import static dev.jvbus.model.venet.VenetWire.U64;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.QueueConfig;
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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Fuzz target: venet's DEVCALLs and its transmit path under a hostile driver. Before the device starts and
 * while the link is up, the input makes device calls with any function and payload (NEGCAP grants the SG
 * and event-queue capabilities the run then uses); once the link is up it sends tx buffers, flat or, when SG
 * was granted, as {@code struct venet_sg} headers with any flags, length, checksum fields and up to 33 iovs
 * whose lengths and guest addresses it chooses (inside its memory, at its edges, or anywhere). The real
 * device (its tx worker, the real switch) carries them to a recording port. What must hold:
 * <ul>
 *   <li>a device call either answers or throws {@link DeviceFault}; nothing else escapes, and no call resets
 *       the device;
 *   <li>each tx buffer, in order, as an oracle written apart from the device says: a bad venet_sg header
 *       (count, flags, iov lengths not adding up, a checksum field past the frame), a runt, or a frame over
 *       MTU + 14 is dropped, counted by its reason and completed with length 0; an iov outside guest memory
 *       resets the device (a ring fault, nothing after it accounted); every other frame is completed with its
 *       descriptor's length and reaches the recorder as the concatenation of its iovs, the checksum completed
 *       as RFC 1071 says, unless the switch drops a foreign source (counted on the device's port);
 *   <li>no byte outside guest memory changes (guard bands), and the device is released after each input.
 * </ul>
 */
final class VenetTarget {
    private static final long BASE = 0x1000_0000L, MEM = 512 << 10;
    private static final long RING_RX = BASE, RING_TX = BASE + 0x1000, RING_EVQ = BASE + 0x2000;
    private static final long RX_BUFS = BASE + 0x10000, TX_BUFS = BASE + 0x20000, SG_DESCS = BASE + 0x30000, EV_BUFS = BASE + 0x40000;
    private static final int COUNT = 16, BUF = 2048, SG_SLOT = 1024, EV_BUF = 64;
    private static final int MAX_FRAME = 1500 + VenetWire.ETH_HLEN;
    private static final long RECORDER_MAC = MacAddress.parse("02:00:00:00:fe:01");

    private static GuardedMemory mem;
    private static Device dut;
    private static L2Switch sw;
    private static Recorder recorder;
    private static final EventFd[] kicks = new EventFd[3], calls = new EventFd[3];

    /** One tx buffer as the driver sent it: the frame its iovs make (null if the header is bad) and its fate. */
    private record Sent(long cookie, long descLength, Fate fate, byte[] frame) {}

    private enum Fate { SENT, RUNT, OVERSIZE, BAD_HEADER, FAULT }

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
            mem = new GuardedMemory("fuzz-venet", new long[] {BASE}, new long[] {MEM});
            Container box = Bus.withDiscoveredModels().createContainer("fuzz-venet");
            dut = box.addDevice(VenetModel.TYPE);
            sw = Networks.of(box).getOrCreate("default");
            recorder = new Recorder();
            sw.join(recorder, RECORDER_MAC);
            for (int q = 0; q < 3; q++) {
                kicks[q] = EventFd.create();
                calls[q] = EventFd.create();
            }
        }
        mem.reset();
        recorder.taken();
        FuzzInput in = new FuzzInput(bytes);
        try (Attachment a = dut.attach("fuzz", DeviceObserver.NONE)) {
            a.addStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
            a.ackFeatures(a.offeredFeatures() & (in.bit() ? -1L : 0));
            a.addStatus(DeviceStatus.FEATURES_OK);
            int[] granted = {0, 0};   // SG caps, EVENTQ caps
            for (int i = in.below(8); i > 0; i--) anyCall(in, a, granted, true);
            if (needsReset()) throw new AssertionError("a device call before DRIVER_OK reset the device: " + dut.needsResetReason());

            a.setMemory(mem.memory());
            IoqDriver rx = IoqDriver.create(0, mem.memory(), RING_RX, COUNT, Notifier.of(kicks[0]), true);
            IoqDriver tx = IoqDriver.create(1, mem.memory(), RING_TX, COUNT, Notifier.of(kicks[1]), true);
            setQueue(a, 0, RING_RX);
            setQueue(a, 1, RING_TX);
            IoqDriver evq = null;
            if (granted[1] != 0) {
                evq = IoqDriver.create(2, mem.memory(), RING_EVQ, COUNT, Notifier.of(kicks[2]), true);
                setQueue(a, 2, RING_EVQ);
            }
            a.addStatus(DeviceStatus.DRIVER_OK);
            while (rx.hasRoom()) rx.offer(rx.nextSlot(), RX_BUFS + (long) rx.nextSlot() * BUF, BUF);
            if (evq != null) {
                while (evq.hasRoom()) evq.offer(evq.nextSlot(), EV_BUFS + (long) evq.nextSlot() * EV_BUF, EV_BUF);
                evq.kick();
            }
            a.call(VenetWire.FUNC_LINKUP, new byte[0]);
            VenetFunction fn = (VenetFunction) a.function();
            mac = MacAddress.fromBytes(a.call(VenetWire.FUNC_MACQUERY, new byte[6]));
            long[] drops0 = {fn.txDropsRunt, fn.txDropsOversize, fn.txDropsBadHeader};
            long spoofed0 = spoofed();

            List<Sent> sent = new ArrayList<>();
            Map<Long, Long> completed = new HashMap<>();
            long cookie = 0;
            for (int step = 0; in.more() && step < 40 && !needsReset(); step++) {
                switch (in.below(5)) {
                    case 0 -> anyCall(in, a, granted, false);
                    case 1, 2, 3 -> {
                        reap(tx, completed);
                        if (!tx.hasRoom()) break;
                        int slot = tx.nextSlot();
                        Sent s = granted[0] != 0 ? sg(in, cookie++, slot) : flat(in, cookie++, slot);
                        if (!tx.offer(s.cookie(), granted[0] != 0 ? SG_DESCS + (long) slot * SG_SLOT : TX_BUFS + (long) slot * BUF, s.descLength()))
                            throw new AssertionError("the tx ring refused an offer it had room for");
                        sent.add(s);
                        if (in.bit()) tx.kick();
                    }
                    default -> tx.kick();
                }
            }
            tx.kick();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (completed.size() < sent.size() && !needsReset()) {
                reap(tx, completed);
                if (evq != null) reapEvents(evq);
                if (System.nanoTime() > deadline)
                    throw new AssertionError("the device completed " + completed.size() + " of " + sent.size() + " tx buffers in 20 s");
                LockSupport.parkNanos(50_000);
            }
            check(sent, completed, fn, drops0, spoofed0);
        } catch (QueueFault f) {
            throw new AssertionError("the driver side of a ring faulted: the device wrote what a driver must not see", f);
        }
        mem.assertGuardsIntact();
        if (dut.holder().isPresent()) throw new AssertionError("the device was not released");
    }

    private static boolean needsReset() {
        return dut.needsResetReason().isPresent();
    }

    private static void setQueue(Attachment a, int q, long head) {
        a.setQueue(new QueueConfig(q, COUNT, head + 56, head, 0));
        a.setDoorbells(q, kicks[q], Notifier.of(calls[q]));
    }

    /**
     * A device call with a function and payload the input chooses. Before DRIVER_OK anything goes (NEGCAP's
     * grants are noted; the event queue's TXC capability is not asked for, so tx completions need no event
     * buffers); with the link up, never LINKUP/LINKDOWN, so the tx worker keeps running.
     */
    private static void anyCall(FuzzInput in, Attachment a, int[] granted, boolean beforeStart) {
        int func = in.below(8) == 0 ? in.u32() : in.below(8);
        if (!beforeStart && (func == VenetWire.FUNC_LINKUP || func == VenetWire.FUNC_LINKDOWN)) func = VenetWire.FUNC_MACQUERY;
        byte[] payload = switch (in.below(4)) {
            case 0 -> new byte[0];
            case 1 -> new byte[6];
            case 2 -> ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(in.below(4)).putInt(in.u8()).array();
            default -> in.bytes(in.below(24));
        };
        if (func == VenetWire.FUNC_NEGCAP && payload.length == 8) {
            ByteBuffer b = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
            if (b.getInt(0) == VenetWire.CAP_GROUP_EVENTQ) b.putInt(4, b.getInt(4) & ~VenetWire.CAP_EVQ_TXC);
        }
        byte[] reply;
        try {
            reply = a.call(func, payload);
        } catch (DeviceFault refused) {
            return;
        }
        if (func == VenetWire.FUNC_NEGCAP) {
            ByteBuffer b = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
            int gid = b.getInt(0), bits = b.getInt(4);
            int asked = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).getInt(4);
            if ((bits & ~asked) != 0) throw new AssertionError("NEGCAP granted 0x" + Integer.toHexString(bits) + " of 0x" + Integer.toHexString(asked));
            if (gid == VenetWire.CAP_GROUP_SG) granted[0] = bits & VenetWire.CAP_SG;
            if (gid == VenetWire.CAP_GROUP_EVENTQ) granted[1] = bits;
        }
    }

    private static Sent flat(FuzzInput in, long cookie, int slot) {
        int len = frameLength(in);
        long at = TX_BUFS + (long) slot * BUF;
        byte[] frame = frame(in, len);
        MemorySegment.copy(frame, 0, mem.at(at, BUF), ValueLayout.JAVA_BYTE, 0, Math.min(len, BUF));
        Fate fate = len < VenetWire.ETH_HLEN ? Fate.RUNT : len > MAX_FRAME ? Fate.OVERSIZE : Fate.SENT;
        return new Sent(cookie, Math.min(len, BUF), fate, frame);
    }

    /** A venet_sg whose iovs point into the slot's tx buffer (mostly), at memory's edges, or anywhere. */
    private static Sent sg(FuzzInput in, long cookie, int slot) {
        int len = frameLength(in);
        byte[] frame = frame(in, Math.min(len, BUF));
        long buf = TX_BUFS + (long) slot * BUF;
        MemorySegment.copy(frame, 0, mem.at(buf, BUF), ValueLayout.JAVA_BYTE, 0, frame.length);
        int count = in.below(8) == 0 ? in.below(VenetWire.SG_MAX_IOVS + 2) : 1 + in.below(4);
        int flags = in.below(8) == 0 ? in.u8() : in.below(4) == 0 ? VenetWire.SG_FLAG_NEEDS_CSUM : 0;
        int csumStart = in.below(Math.max(1, len + 4)), csumOffset = new int[] {6, 16, 10, 0}[in.below(4)];
        long declared = in.below(8) == 0 ? (in.u32() & 0xffff_ffffL) : len;
        long[] iovLen = new long[count], iovPtr = new long[count];
        boolean outside = false;
        int pos = 0;
        for (int i = 0; i < count; i++) {
            int piece = i == count - 1 ? len - pos : Math.min(len - pos, in.below(Math.max(1, len - pos + 1)));
            iovLen[i] = in.below(16) == 0 ? (in.u32() & 0xffff_ffffL) : Math.max(0, piece);
            iovPtr[i] = switch (in.below(12)) {
                case 0 -> in.u64();
                case 1 -> BASE + MEM - in.below(64);
                case 2 -> BASE - in.below(64);
                default -> buf + pos;
            };
            pos += Math.max(0, piece);
        }
        int descLen = in.below(16) == 0 ? in.below(SG_SLOT + 1) : VenetWire.sgDescSize(Math.max(count, 1));
        descLen = Math.min(descLen, SG_SLOT);
        MemorySegment d = mem.at(SG_DESCS + (long) slot * SG_SLOT, SG_SLOT);
        d.fill((byte) 0);
        d.set(U64, VenetWire.SG_COOKIE, cookie);
        d.set(U32, VenetWire.SG_FLAGS, flags);
        d.set(U32, VenetWire.SG_LEN, (int) declared);
        d.set(U16, VenetWire.SG_CSUM_START, (short) csumStart);
        d.set(U16, VenetWire.SG_CSUM_OFFSET, (short) csumOffset);
        d.set(U32, VenetWire.SG_COUNT, count);
        for (int i = 0; i < count && VenetWire.sgDescSize(i + 1) <= SG_SLOT; i++) {
            d.set(U32, VenetWire.SG_IOV + (long) VenetWire.IOV_SIZE * i + VenetWire.IOV_LEN, (int) iovLen[i]);
            d.set(U64, VenetWire.SG_IOV + (long) VenetWire.IOV_SIZE * i + VenetWire.IOV_PTR, iovPtr[i]);
        }

        // The oracle, in the device's order: header (no longer than the largest venet_sg), runt, oversize, lengths,
        // checksum field; then the iovs' memory.
        if (descLen < VenetWire.sgDescSize(1) || descLen > VenetWire.sgDescSize(VenetWire.SG_MAX_IOVS) || count < 1 || count > VenetWire.SG_MAX_IOVS || descLen < VenetWire.sgDescSize(count)
                || (flags & ~VenetWire.SG_FLAG_NEEDS_CSUM) != 0)
            return new Sent(cookie, descLen, Fate.BAD_HEADER, null);
        if (declared < VenetWire.ETH_HLEN) return new Sent(cookie, descLen, Fate.RUNT, null);
        if (declared > MAX_FRAME) return new Sent(cookie, descLen, Fate.OVERSIZE, null);
        long total = 0;
        for (long l : iovLen) total += l;
        boolean csum = (flags & VenetWire.SG_FLAG_NEEDS_CSUM) != 0;
        if (total != declared || csum && (long) csumStart + csumOffset + 2 > declared) return new Sent(cookie, descLen, Fate.BAD_HEADER, null);
        byte[] out = new byte[(int) declared];
        int at = 0;
        for (int i = 0; i < count; i++) {
            if (!mem.contains(iovPtr[i], iovLen[i])) return new Sent(cookie, descLen, Fate.FAULT, null);
            MemorySegment.copy(mem.at(iovPtr[i], iovLen[i]), ValueLayout.JAVA_BYTE, 0, out, at, (int) iovLen[i]);
            at += (int) iovLen[i];
        }
        if (csum) complete(out, csumStart, csumOffset);
        return new Sent(cookie, descLen, Fate.SENT, out);
    }

    private static int frameLength(FuzzInput in) {
        return switch (in.below(5)) {
            case 0 -> in.below(20);
            case 1 -> MAX_FRAME - 2 + in.below(5);
            case 2 -> in.below(BUF + 1);
            default -> 14 + in.below(200);
        };
    }

    /** To the recorder (or broadcast), from the device's MAC or (1 in 8) another; a pattern after. */
    private static byte[] frame(FuzzInput in, int len) {
        byte[] f = new byte[len];
        for (int i = 0; i < len; i++) f[i] = (byte) (i * 13 + len);
        if (len >= 12) {
            long dst = in.bit() ? RECORDER_MAC : 0xffff_ffff_ffffL;
            long src = in.below(8) == 0 ? 0x0200_0000_cc00L | in.u8() : mac;
            for (int i = 0; i < 6; i++) {
                f[i] = (byte) (dst >>> (8 * (5 - i)));
                f[6 + i] = (byte) (src >>> (8 * (5 - i)));
            }
        }
        return f;
    }

    /** The device's MAC, this input (MACQUERY). */
    private static long mac;

    private static void reap(IoqDriver tx, Map<Long, Long> completed) throws QueueFault {
        tx.reap(completed::put, COUNT);
    }

    private static void reapEvents(IoqDriver evq) throws QueueFault {
        int n = evq.reap((c, l) -> { }, COUNT);
        for (int i = 0; i < n && evq.hasRoom(); i++) evq.offer(evq.nextSlot(), EV_BUFS + (long) evq.nextSlot() * EV_BUF, EV_BUF);
        if (n > 0) evq.kick();
    }

    private static long spoofed() {
        long n = 0;
        for (PortStats p : sw.stats()) if (!p.port().equals(recorder.name())) n += p.drops().getOrDefault(DropReason.SPOOFED_SOURCE, 0L);
        return n;
    }

    private static void check(List<Sent> sent, Map<Long, Long> completed, VenetFunction fn, long[] drops0, long spoofed0) {
        long runt = 0, oversize = 0, bad = 0, foreign = 0;
        boolean fault = false;
        List<byte[]> expected = new ArrayList<>();
        // A ring fault ends the worker mid-batch: completions it made before it may never be published.
        boolean faultAhead = sent.stream().anyMatch(s -> s.fate() == Fate.FAULT);
        for (Sent s : sent) {
            if (s.fate() == Fate.FAULT) {
                fault = true;
                break;
            }
            Long got = completed.get(s.cookie());
            long want = s.fate() == Fate.SENT ? s.descLength() : 0;
            if (faultAhead && got == null) continue;
            if (got == null || got != want)
                throw new AssertionError("tx buffer " + s.cookie() + " (" + s.fate() + ") completed with " + got + ", oracle " + want);
            switch (s.fate()) {
                case RUNT -> runt++;
                case OVERSIZE -> oversize++;
                case BAD_HEADER -> bad++;
                default -> {
                    if (!Arrays.equals(s.frame(), 6, 12, MacAddress.toBytes(mac), 0, 6)) foreign++;
                    else expected.add(s.frame());
                }
            }
        }
        String reason = dut.needsResetReason().orElse(null);
        if (fault != (reason != null))
            throw new AssertionError(fault ? "an iov outside guest memory did not reset the device" : "the device needs a reset: " + reason);
        if (fault) {
            if (!reason.contains("venet_sg")) throw new AssertionError("reset for another reason: " + reason);
            return;
        }
        long[] d = {fn.txDropsRunt - drops0[0], fn.txDropsOversize - drops0[1], fn.txDropsBadHeader - drops0[2]};
        if (!Arrays.equals(d, new long[] {runt, oversize, bad}))
            throw new AssertionError("device drops runt/oversize/bad-header " + Arrays.toString(d) + ", oracle " + List.of(runt, oversize, bad));
        if (spoofed() - spoofed0 != foreign) throw new AssertionError("switch spoof drops " + (spoofed() - spoofed0) + ", oracle " + foreign);
        List<byte[]> got = recorder.taken();
        if (got.size() != expected.size()) throw new AssertionError("recorder got " + got.size() + " frames, oracle " + expected.size());
        for (int i = 0; i < got.size(); i++)
            if (!Arrays.equals(got.get(i), expected.get(i))) throw new AssertionError("frame " + i + " differs from the oracle's");
    }

    /** RFC 1071 from start to the end, the field seeded as the driver left it, stored big-endian (venet keeps 0 as 0). */
    private static void complete(byte[] f, int start, int off) {
        long sum = 0;
        int i = start;
        for (; i + 1 < f.length; i += 2) sum += ((f[i] & 0xff) << 8) | (f[i + 1] & 0xff);
        if (i < f.length) sum += (f[i] & 0xff) << 8;
        while ((sum >>> 16) != 0) sum = (sum & 0xffff) + (sum >>> 16);
        int c = ~(int) sum & 0xffff;
        f[start + off] = (byte) (c >>> 8);
        f[start + off + 1] = (byte) c;
    }
}
