package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.VenetWire.U32;
import static dev.jvbus.model.venet.VenetWire.U64;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * A test-side venet guest driver: its own memfd as guest memory, IoqDriver rings for rx, tx and
 * (optionally) the event queue, eventfd doorbells, and the venet bring-up sequence (features,
 * NEGCAP, queues, DRIVER_OK, LINKUP). Single-threaded: the test thread drives it. Public, with the
 * members a switch test needs, for virtio-net's mixed-model test (through venet's test-jar).
 */
public final class VenetGuest implements AutoCloseable {
    static final long BASE = 0x1000_0000L;
    static final long SIZE = 4 << 20;
    static final long RING_RX = BASE, RING_TX = BASE + 0x2000, RING_EVQ = BASE + 0x4000;
    static final long RX_BUFS = BASE + 0x10000, TX_BUFS = BASE + 0x100000, EV_BUFS = BASE + 0x1F0000, SG_DESCS = BASE + 0x200000;
    public static final int COUNT = 64;
    static final int BUF = 9024;
    static final int EV_BUF = 32;
    static final int SG_DESC = 256;

    /** What the guest asks for. */
    public record Options(int sgCaps, int evqCaps, boolean eventQueue, int rxBufSize) {
        public static Options flat() { return new Options(0, 0, false, 1514); }
        Options withSg() { return new Options(VenetWire.CAP_SG, evqCaps, eventQueue, rxBufSize); }
        Options withEvents(int caps) { return new Options(sgCaps, caps, true, rxBufSize); }
        public Options rxBuf(int size) { return new Options(sgCaps, evqCaps, eventQueue, size); }
    }

    final Memfd memfd = Memfd.create("venet-guest", SIZE);
    final GuestMemory memory = GuestMemory.of(new MemoryRegion(BASE, SIZE, memfd.segment()));
    final EventFd[] kicks = {EventFd.create(), EventFd.create(), EventFd.create()};
    final EventFd[] calls = {EventFd.create(), EventFd.create(), EventFd.create()};
    final Options options;
    /** The rx queue's call doorbell as the device sees it (the guest's own eventfd unless a test puts another). */
    Notifier rxCall;
    final List<String> needsReset = new ArrayList<>();
    Attachment att;
    IoqDriver rx, tx, evq;
    int grantedSg, grantedEvq;

    // what arrived
    public final List<byte[]> received = new ArrayList<>();
    final List<Integer> linkEvents = new ArrayList<>();
    final List<Long> txcCookies = new ArrayList<>();
    final List<Long> txCompletionLengths = new ArrayList<>();
    long txSeq;
    long rxZeroLength;

    public VenetGuest(Options options) {
        this.options = options;
        this.rxCall = Notifier.of(calls[0]);
    }

    /** The device rings {@code call} instead of the guest's eventfd when it fills the rx ring (set before bring-up). */
    VenetGuest withRxCall(Notifier call) {
        this.rxCall = call;
        return this;
    }

    MemorySegment at(long guest, long len) {
        return memfd.segment().asSlice(guest - BASE, len);
    }

    /** Full bring-up on a fresh device. */
    public VenetGuest bringUp(Device device) throws Exception {
        attach(device);
        return start();
    }

    /** A driver reset (status 0), then the whole bring-up again on fresh rings in the same memory: a new session. */
    VenetGuest restart() throws Exception {
        att.reset();
        return start();
    }

    private VenetGuest start() throws Exception {
        att.addStatus(DeviceStatus.ACKNOWLEDGE);
        att.addStatus(DeviceStatus.DRIVER);
        att.ackFeatures(att.offeredFeatures());
        att.addStatus(DeviceStatus.FEATURES_OK);
        grantedSg = negcap(VenetWire.CAP_GROUP_SG, options.sgCaps);
        grantedEvq = negcap(VenetWire.CAP_GROUP_EVENTQ, options.evqCaps);
        att.setMemory(memory);
        rx = IoqDriver.create(0, memory, RING_RX, COUNT, Notifier.of(calls[0]), true);
        tx = IoqDriver.create(1, memory, RING_TX, COUNT, Notifier.of(kicks[1]), true);
        setQueue(0, RING_RX);
        setQueue(1, RING_TX);
        if (options.eventQueue) {
            evq = IoqDriver.create(2, memory, RING_EVQ, COUNT, Notifier.of(kicks[2]), true);
            setQueue(2, RING_EVQ);
        }
        att.addStatus(DeviceStatus.DRIVER_OK);
        while (rx.hasRoom()) postRx();
        if (evq != null) while (evq.hasRoom()) evq.offer(evq.nextSlot(), EV_BUFS + (long) evq.nextSlot() * EV_BUF, EV_BUF);
        if (evq != null) evq.kick();
        call(VenetWire.FUNC_LINKUP, new byte[0]);
        return this;
    }

    /** The attachment after bring-up (its function is the device's switch port backend). */
    public Attachment attachment() {
        return att;
    }

    void attach(Device device) {
        att = device.attach("venet-guest", new DeviceObserver() {
            @Override public void needsReset(DevId devid, String reason) {
                synchronized (needsReset) { needsReset.add(reason); }
            }
        });
    }

    /** After a restore: the same memory and doorbells on the new device, then resume. */
    void reattach(Device device) {
        attach(device);
        att.setMemory(memory);
        for (int q = 0; q < (evq != null ? 3 : 2); q++) att.setDoorbells(q, kicks[q], Notifier.of(calls[q]));
        device.resume();
    }

    private void setQueue(int q, long head) {
        att.setQueue(new QueueConfig(q, COUNT, head + 56, head, 0));
        att.setDoorbells(q, kicks[q], q == 0 ? rxCall : Notifier.of(calls[q]));
    }

    int negcap(int gid, int bits) throws DeviceFault {
        byte[] p = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(gid).putInt(bits).array();
        byte[] r = call(VenetWire.FUNC_NEGCAP, p);
        ByteBuffer b = ByteBuffer.wrap(r).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != gid) throw new AssertionError("NEGCAP answered for group " + b.getInt(0));
        return b.getInt(4);
    }

    byte[] call(int func, byte[] payload) throws DeviceFault {
        return att.call(func, payload);
    }

    public long mac() throws DeviceFault {
        byte[] m = call(VenetWire.FUNC_MACQUERY, new byte[6]);
        long v = 0;
        for (byte x : m) v = (v << 8) | (x & 0xff);
        return v;
    }

    private void postRx() throws QueueFault {
        int slot = rx.nextSlot();
        rx.offer(slot, RX_BUFS + (long) slot * BUF, options.rxBufSize);
    }

    // ---------------------------------------------------------------- tx

    /** Sends one frame (flat, or as a venet_sg with two iovs for odd sequence numbers when SG was granted). */
    boolean send(byte[] frame) throws QueueFault {
        return send(frame, -1, -1);
    }

    /** With a checksum request (SG only): csumStart/csumOffset as Linux CHECKSUM_PARTIAL. */
    boolean send(byte[] frame, int csumStart, int csumOffset) throws QueueFault {
        reapTx();
        if (!tx.hasRoom()) return false;
        int slot = tx.nextSlot();
        long buf = TX_BUFS + (long) slot * BUF;
        MemorySegment.copy(frame, 0, at(buf, frame.length), ValueLayout.JAVA_BYTE, 0, frame.length);
        long cookie = txSeq++;
        if (grantedSg == 0) {
            tx.offer(cookie, buf, frame.length);
        } else {
            int count = (cookie & 1) == 1 && frame.length > 20 ? 2 : 1;
            long d = SG_DESCS + (long) slot * SG_DESC;
            MemorySegment s = at(d, SG_DESC);
            s.fill((byte) 0);
            s.set(U64, VenetWire.SG_COOKIE, cookie);
            s.set(U32, VenetWire.SG_FLAGS, csumStart >= 0 ? VenetWire.SG_FLAG_NEEDS_CSUM : 0);
            s.set(U32, VenetWire.SG_LEN, frame.length);
            s.set(VenetWire.U16, VenetWire.SG_CSUM_START, (short) Math.max(csumStart, 0));
            s.set(VenetWire.U16, VenetWire.SG_CSUM_OFFSET, (short) Math.max(csumOffset, 0));
            s.set(U32, VenetWire.SG_COUNT, count);
            int first = count == 1 ? frame.length : 17;
            s.set(U32, VenetWire.SG_IOV, first);
            s.set(U64, VenetWire.SG_IOV + VenetWire.IOV_PTR, buf);
            if (count == 2) {
                s.set(U32, VenetWire.SG_IOV + VenetWire.IOV_SIZE, frame.length - first);
                s.set(U64, VenetWire.SG_IOV + VenetWire.IOV_SIZE + VenetWire.IOV_PTR, buf + first);
            }
            tx.offer(cookie, d, VenetWire.sgDescSize(count));
        }
        tx.kick();
        return true;
    }

    public void sendBlocking(byte[] frame) throws QueueFault {
        await(() -> send(frame), "tx ring room");
    }

    void sendBlocking(byte[] frame, int csumStart, int csumOffset) throws QueueFault {
        await(() -> send(frame, csumStart, csumOffset), "tx ring room");
    }

    int reapTx() throws QueueFault {
        return tx.reap((cookie, length) -> txCompletionLengths.add(length), Integer.MAX_VALUE);
    }

    // ---------------------------------------------------------------- rx and events

    /** Takes what arrived on rx (and reposts the buffers), and what arrived on the event queue. */
    public int poll() throws QueueFault {
        List<long[]> got = new ArrayList<>();
        int n = rx.reap((cookie, length) -> got.add(new long[] {cookie, length}), Integer.MAX_VALUE);
        for (long[] g : got) {
            if (g[1] == 0) rxZeroLength++;
            else received.add(at(RX_BUFS + g[0] * BUF, g[1]).toArray(ValueLayout.JAVA_BYTE));
            postRx();
        }
        if (n > 0) rx.kick();
        if (evq != null) {
            List<long[]> ev = new ArrayList<>();
            int e = evq.reap((cookie, length) -> ev.add(new long[] {cookie, length}), Integer.MAX_VALUE);
            for (long[] x : ev) {
                MemorySegment s = at(EV_BUFS + x[0] * EV_BUF, EV_BUF);
                int size = s.get(U32, VenetWire.EV_SIZE), id = s.get(U32, VenetWire.EV_ID);
                if (size != x[1]) throw new AssertionError("event size " + size + " but completed with " + x[1]);
                if (id == VenetWire.EVENT_LINKSTATE) linkEvents.add((int) s.get(ValueLayout.JAVA_BYTE, VenetWire.EV_LINKSTATE_STATE));
                else if (id == VenetWire.EVENT_TXC) txcCookies.add(s.get(U64, VenetWire.EV_TXC_COOKIE));
                else throw new AssertionError("unknown event id " + id);
                evq.offer(evq.nextSlot(), EV_BUFS + (long) evq.nextSlot() * EV_BUF, EV_BUF);
            }
            if (e > 0) evq.kick();
            n += e;
        }
        return n;
    }

    /** Only takes completed rx buffers without reposting them (to play a guest whose rx ring runs dry). */
    public int drainWithoutRepost(List<byte[]> into) throws QueueFault {
        List<long[]> got = new ArrayList<>();
        int n = rx.reap((cookie, length) -> got.add(new long[] {cookie, length}), Integer.MAX_VALUE);
        for (long[] g : got) into.add(at(RX_BUFS + g[0] * BUF, g[1]).toArray(ValueLayout.JAVA_BYTE));
        return n;
    }

    public void repostAll() throws QueueFault {
        while (rx.hasRoom()) postRx();
        rx.kick();
    }

    interface Step {
        boolean done() throws Exception;
    }

    static void await(Step step, String what) {
        long deadline = System.nanoTime() + 20_000_000_000L;
        try {
            while (!step.done()) {
                if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
                LockSupport.parkNanos(50_000);
            }
        } catch (RuntimeException | AssertionError e) {
            throw e;
        } catch (Exception e) {
            throw new AssertionError(what + ": " + e, e);
        }
    }

    static void awaitTrue(BooleanSupplier s, String what) {
        await(s::getAsBoolean, what);
    }

    @Override
    public void close() {
        if (att != null) att.close();
        for (EventFd e : kicks) e.close();
        for (EventFd e : calls) e.close();
        memfd.close();
    }
}
