package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Test-side guest driver for one virtio-net device, as a Linux guest would drive it: negotiates
 * through an {@link Attachment}, lays out the rx and tx rings and their buffers in its own memfd,
 * posts rx buffers (one per ring slot: {@link #MERGE_BUFFER} bytes with MRG_RXBUF, else big enough for
 * header plus MTU frame), sends frames in one of three layouts, and collects received frames (joining
 * merged buffers by num_buffers). One thread drives it at a time; a separate thread may send while
 * another receives (the rx and tx halves share no state).
 */
final class GuestNet implements AutoCloseable {
    static final long G = 0x4000_0000L;                  // guest address of the one region
    static final long MEMORY = 24L << 20;
    static final long RING_AREA = 0x2_0000, RX_RING = 0, TX_RING = RING_AREA;
    static final long RX_BUFFERS = 0x10_0000;
    static final long TX_BUFFERS = 0x80_0000;
    static final long TX_SLOT = 0x4000;                  // 16 KiB: header + jumbo frame
    static final long TABLES = 0x170_0000;
    static final long CTRL_RING = 0x178_0000;            // the control queue (64 entries) and its command buffers
    static final long CTRL_BUFFERS = 0x179_0000;
    static final int CTRL_SIZE = 64;
    static final int MERGE_BUFFER = 1536;                // what Linux posts for mergeable rx (GOOD_PACKET_LEN rounded)
    static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** How a frame is laid out in tx descriptors. */
    enum TxLayout {
        /** header and frame in one descriptor (Linux with VERSION_1 / ANY_LAYOUT) */
        ONE,
        /** header alone, then the frame in two pieces (scatter-gather) */
        SPLIT,
        /** header and frame through an indirect table */
        INDIRECT
    }

    /** A received frame and the header it came with. */
    record Rx(byte[] frame, int flags, int numBuffers, int gsoType, int gsoSize, int csumStart, int csumOffset) { }

    Device device;
    Attachment a;
    final Memfd mem;
    final GuestMemory memory;
    final int queueSize;
    final EventFd rxKick = EventFd.create(), rxCall = EventFd.create(), txKick = EventFd.create(), txCall = EventFd.create();
    final EventFd ctrlKick = EventFd.create(), ctrlCall = EventFd.create();
    private final DoorbellWait rxWait = new DoorbellWait(), txWait = new DoorbellWait();
    /** Configuration change notifications the device sent this driver. */
    final java.util.concurrent.atomic.AtomicInteger configChanges = new java.util.concurrent.atomic.AtomicInteger();
    final DeviceObserver observer = new DeviceObserver() {
        @Override public void configChanged(dev.jvbus.core.bus.DevId devid) { configChanges.incrementAndGet(); }
    };
    private final boolean ownsMemory;

    long features;
    boolean mergeable;
    int rxBufLen;
    boolean rxSplitHeader;                 // post rx buffers as [header][rest] (two descriptors)
    /** The virtio_net_hdr's length: 12 (VERSION_1 or MRG_RXBUF), 10 for a legacy driver with neither. */
    int hdr = 12;
    int rxHeaderPiece = 12;                // with rxSplitHeader: the first descriptor's length (below 12: the header itself split)
    SplitVirtqueueDriver rxq, txq, ctrlq;
    int ctrlIndex;                         // where the control queue is: 2, or 2 x max pairs with MQ
    private final long[] rxBufOf, txSlotOf;
    private final ArrayDeque<Integer> freeTxSlots = new ArrayDeque<>();
    private final BufferList list = new BufferList(4);
    long txCompleted, txUsedLenNonZero;

    GuestNet(Device device, int queueSize) {
        this(device, queueSize, Memfd.create("guest-net", MEMORY), true);
    }

    /** A driver over existing memory (a restored device whose guest never stopped). */
    GuestNet(Device device, int queueSize, Memfd mem, boolean ownsMemory) {
        this.device = device;
        this.a = device.attach("guest", observer);
        this.mem = mem;
        this.ownsMemory = ownsMemory;
        // As a connector maps a front-end's file: one the front-end can still shrink says so (Memfd#shrinkable).
        this.memory = GuestMemory.of(new MemoryRegion(G, MEMORY, mem.segment(), null, mem.shrinkable()));
        this.queueSize = queueSize;
        this.rxBufOf = new long[queueSize];
        this.txSlotOf = new long[queueSize];
        for (int s = 0; s < queueSize; s++) freeTxSlots.add(s);
        rxWait.add(rxCall);
        txWait.add(txCall);
    }

    static long all() {
        return -1L;
    }

    long mac() {
        return MacAddress.fromBytes(a.readConfig(VirtioNetModel.CONFIG_MAC, 6));
    }

    /** ACKNOWLEDGE, DRIVER, acks what is offered of {@code want}, FEATURES_OK. */
    GuestNet negotiate(long want) {
        a.writeStatus(ACKNOWLEDGE | DRIVER);
        a.ackFeatures(a.offeredFeatures() & want);
        a.addStatus(FEATURES_OK);
        features = a.negotiatedFeatures();
        return this;
    }

    /** Sets up both queues, DRIVER_OK, and fills the rx ring. */
    GuestNet start() throws QueueFault {
        boolean eventIdx = VirtioFeatures.EVENT_IDX.in(features);
        boolean indirect = VirtioFeatures.INDIRECT_DESC.in(features);
        boolean inOrder = VirtioFeatures.IN_ORDER.in(features);
        mergeable = VirtioNetFeatures.MRG_RXBUF.in(features);
        int mtu = VirtioNetFeatures.MTU.in(features) ? (int) le16(a.readConfig(VirtioNetModel.CONFIG_MTU, 2)) : 1500;
        hdr = VirtioFeatures.VERSION_1.in(features) || mergeable ? 12 : 10;   // a legacy driver's header has no num_buffers
        rxBufLen = mergeable ? MERGE_BUFFER : hdr + mtu + 18;
        a.setMemory(memory);
        rxq = SplitVirtqueueDriver.create(0, queueSize, G + RX_RING, G + RX_RING + 0x8000, G + RX_RING + 0x1_0000, memory, eventIdx, indirect, inOrder, Notifier.of(rxKick));
        txq = SplitVirtqueueDriver.create(1, queueSize, txDesc, txAvail, txUsed, memory, eventIdx, indirect, inOrder, Notifier.of(txKick));
        setQueue(new QueueConfig(0, queueSize, G + RX_RING, G + RX_RING + 0x8000, G + RX_RING + 0x1_0000), eventIdx);
        setQueue(new QueueConfig(1, queueSize, txDesc, txAvail, txUsed), eventIdx);
        a.setDoorbells(0, rxKick, Notifier.of(rxCall));
        a.setDoorbells(1, txKick, Notifier.of(txCall));
        if (VirtioNetFeatures.CTRL_VQ.in(features)) {   // the control queue, as Linux sets it up: after the pairs (2 without MQ)
            int ctrl = ctrlIndex = VirtioNetModel.ctrlQueue(features, (int) le16(a.readConfig(VirtioNetModel.CONFIG_MAX_PAIRS, 2)));
            ctrlq = SplitVirtqueueDriver.create(ctrl, CTRL_SIZE, G + CTRL_RING, G + CTRL_RING + 0x400, G + CTRL_RING + 0x1000, memory,
                    eventIdx, indirect, inOrder, Notifier.of(ctrlKick));
            setQueue(new QueueConfig(ctrl, CTRL_SIZE, G + CTRL_RING, G + CTRL_RING + 0x400, G + CTRL_RING + 0x1000), eventIdx);
            a.setDoorbells(ctrl, ctrlKick, Notifier.of(ctrlCall));
        }
        a.addStatus(DRIVER_OK);
        return this;
    }

    /** Where {@link #start} puts the tx ring's areas (guest addresses): a test may move them before it. */
    long txDesc = G + TX_RING, txAvail = G + TX_RING + 0x8000, txUsed = G + TX_RING + 0x1_0000;

    /** Hands each queue a base of 0 on start, as a vhost-user front-end does (SET_VRING_BASE), instead of no position. */
    boolean ringsFromBase;

    private void setQueue(QueueConfig c, boolean eventIdx) {
        if (!ringsFromBase) {
            a.setQueue(c);
            return;
        }
        a.setQueue(c, new dev.jvbus.core.state.QueueState(c.index(), dev.jvbus.core.state.RingKind.SPLIT, c.size(), true,
                c.descAddr(), c.availAddr(), c.usedAddr(), 0, 0, eventIdx, List.of()));
    }

    /**
     * Sends one control command (class, command, data) as Linux's {@code virtnet_send_command} does (header,
     * data and ack in three descriptors) and waits for the ack byte: 0 OK, 1 ERR.
     */
    int command(int cls, int cmd, byte[] data) throws QueueFault {
        long at = CTRL_BUFFERS;
        MemorySegment seg = mem.segment();
        seg.set(ValueLayout.JAVA_BYTE, at, (byte) cls);
        seg.set(ValueLayout.JAVA_BYTE, at + 1, (byte) cmd);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, seg, at + 16, data.length);
        seg.set(ValueLayout.JAVA_BYTE, at + 15, (byte) 0xee);        // the ack: anything but OK/ERR until the device writes it
        list.clear();
        list.readable(G + at, 2);
        if (data.length > 0) list.readable(G + at + 16, data.length);
        list.writable(G + at + 15, 1);
        return commandRaw(list, at + 15);
    }

    /** Puts {@code buffers} on the control queue, kicks, waits for it to come back used, and returns the byte at {@code ackOffset}. */
    int commandRaw(BufferList buffers, long ackOffset) throws QueueFault {
        if (ctrlq.add(buffers) < 0) throw new AssertionError("control queue full");
        ctrlq.kickIfNeeded();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        long e;
        while ((e = ctrlq.pollUsed()) < 0) {
            if (System.nanoTime() > deadline) throw new AssertionError("the control command was not answered: " + ctrlq);
            Thread.onSpinWait();
        }
        return mem.segment().get(ValueLayout.JAVA_BYTE, ackOffset) & 0xff;
    }

    /** Posts up to {@code n} rx buffers (buffer slot s for ring slot s) and kicks if the device wants it. */
    int postRx(int n) throws QueueFault {
        int posted = 0;
        for (int s = 0; s < queueSize && posted < n; s++) {
            if (rxBufOf[s] != 0) continue;
            if (!postRxSlot(s)) break;
            posted++;
        }
        rxq.kickIfNeeded();
        return posted;
    }

    private boolean postRxSlot(int s) throws QueueFault {
        long addr = G + RX_BUFFERS + (long) s * rxBufLen;
        list.clear();
        if (rxSplitHeader) list.writable(addr, rxHeaderPiece).writable(addr + rxHeaderPiece, rxBufLen - rxHeaderPiece);
        else list.writable(addr, rxBufLen);
        int head = rxq.add(list);
        if (head < 0) return false;
        rxBufOf[s] = -1;                       // slot busy; remember the address by head
        headSlot[head] = s;
        return true;
    }

    private final int[] headSlot = new int[32768];

    /** The next received frame, or null if none is used yet. Reposts the buffers it took. */
    Rx poll() throws QueueFault {
        long e = rxq.pollUsed();
        if (e < 0) return null;
        int head = SplitVirtqueueDriver.usedId(e);
        int len = (int) SplitVirtqueueDriver.usedLength(e);
        int slot = headSlot[head];
        long addr = RX_BUFFERS + (long) slot * rxBufLen;     // offset in the memfd
        MemorySegment seg = mem.segment();
        int flags = seg.get(ValueLayout.JAVA_BYTE, addr) & 0xff;
        int nb = hdr == 12 ? seg.get(LE16, addr + 10) & 0xffff : 1;
        int gsoType = seg.get(ValueLayout.JAVA_BYTE, addr + 1) & 0xff, gsoSize = seg.get(LE16, addr + 4) & 0xffff;
        int csumStart = seg.get(LE16, addr + 6) & 0xffff, csumOffset = seg.get(LE16, addr + 8) & 0xffff;
        byte[] frame;
        releaseRx(slot);
        if (!mergeable) {
            frame = seg.asSlice(addr + hdr, len - hdr).toArray(ValueLayout.JAVA_BYTE);
        } else {
            List<byte[]> parts = new ArrayList<>();
            parts.add(seg.asSlice(addr + 12, len - 12).toArray(ValueLayout.JAVA_BYTE));
            int total = len - 12;
            for (int i = 1; i < nb; i++) {
                long e2 = rxq.pollUsed();
                if (e2 < 0) throw new AssertionError("num_buffers " + nb + " but only " + i + " buffers used");
                int s2 = headSlot[SplitVirtqueueDriver.usedId(e2)];
                int l2 = (int) SplitVirtqueueDriver.usedLength(e2);
                parts.add(seg.asSlice(RX_BUFFERS + (long) s2 * rxBufLen, l2).toArray(ValueLayout.JAVA_BYTE));
                total += l2;
                releaseRx(s2);
            }
            frame = new byte[total];
            int at = 0;
            for (byte[] p : parts) {
                System.arraycopy(p, 0, frame, at, p.length);
                at += p.length;
            }
        }
        postRx(Integer.MAX_VALUE);
        return new Rx(frame, flags, nb, gsoType, gsoSize, csumStart, csumOffset);
    }

    private void releaseRx(int slot) {
        rxBufOf[slot] = 0;
    }

    /** Collects {@code n} frames, waiting for interrupts; returns what came within the timeout. */
    List<Rx> receive(int n, Duration timeout) throws QueueFault {
        List<Rx> out = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        while (out.size() < n) {
            Rx r = poll();
            if (r != null) {
                out.add(r);
                continue;
            }
            if (rxq.enableInterrupts()) {
                rxq.disableInterrupts();
                continue;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) break;
            rxWait.await(rxq::hasUsed, left);
            rxq.disableInterrupts();
        }
        return out;
    }

    /** Sends one frame with a zero header. */
    void send(byte[] frame, TxLayout layout) throws QueueFault {
        send(frame, layout, 0, 0, 0);
    }

    /** Sends one frame with header flags (NEEDS_CSUM: csum_start, csum_offset); waits for a free slot if needed. */
    void send(byte[] frame, TxLayout layout, int flags, int csumStart, int csumOffset) throws QueueFault {
        send(frame, layout, flags, 0, 0, 0, csumStart, csumOffset);
    }

    /** Sends one frame with a whole header (a GSO super-frame: gso_type, hdr_len, gso_size too). */
    void send(byte[] frame, TxLayout layout, int flags, int gsoType, int hdrLen, int gsoSize, int csumStart, int csumOffset)
            throws QueueFault {
        reclaimTx();
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (freeTxSlots.isEmpty() || txq.freeDescriptors() < 3) {
            if (txq.enableInterrupts()) {
                txq.disableInterrupts();
            } else {
                if (System.nanoTime() > deadline) throw new AssertionError("tx ring stayed full: " + txq);
                txWait.await(txq::hasUsed, 10_000_000L);
                txq.disableInterrupts();
            }
            reclaimTx();
        }
        int slot = freeTxSlots.poll();
        long off = TX_BUFFERS + slot * TX_SLOT;
        MemorySegment seg = mem.segment();
        seg.asSlice(off, hdr).fill((byte) 0);
        seg.set(ValueLayout.JAVA_BYTE, off, (byte) flags);
        seg.set(ValueLayout.JAVA_BYTE, off + 1, (byte) gsoType);
        seg.set(LE16, off + 2, (short) hdrLen);
        seg.set(LE16, off + 4, (short) gsoSize);
        seg.set(LE16, off + 6, (short) csumStart);
        seg.set(LE16, off + 8, (short) csumOffset);
        MemorySegment.copy(MemorySegment.ofArray(frame), 0, seg, off + hdr, frame.length);
        long addr = G + off;
        list.clear();
        int head;
        switch (layout) {
            case ONE -> head = txq.add(list.readable(addr, hdr + frame.length));
            case SPLIT -> {
                int first = frame.length / 2;
                head = txq.add(list.readable(addr, hdr).readable(addr + hdr, first).readable(addr + hdr + first, frame.length - first));
            }
            default -> head = txq.addIndirect(list.readable(addr, hdr).readable(addr + hdr, frame.length), G + TABLES + slot * 64L);
        }
        if (head < 0) throw new AssertionError("no descriptor free although checked");
        txSlotOf[head] = slot;
        txq.kickIfNeeded();
    }

    /** Returns completed tx buffers to the free list. */
    void reclaimTx() throws QueueFault {
        for (long e; (e = txq.pollUsed()) >= 0; ) {
            if (SplitVirtqueueDriver.usedLength(e) != 0) txUsedLenNonZero++;
            freeTxSlots.add((int) txSlotOf[SplitVirtqueueDriver.usedId(e)]);
            txCompleted++;
        }
    }

    /** Waits until every frame sent so far came back used. */
    void drainTx(Duration timeout) throws QueueFault {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (txq.outstanding() > 0 && System.nanoTime() < deadline) {
            reclaimTx();
            if (txq.outstanding() == 0) break;
            if (!txq.enableInterrupts()) txWait.await(txq::hasUsed, 10_000_000L);
            txq.disableInterrupts();
        }
        reclaimTx();
    }

    /**
     * The device was saved and restored (on another bus): attach to the restored device and hand it
     * the same memory and doorbells, as a connector would. The rings and buffers never moved.
     */
    void reattach(Device restored) {
        device = restored;
        a = restored.attach("guest", observer);
        a.setMemory(memory);
        a.setDoorbells(0, rxKick, Notifier.of(rxCall));
        a.setDoorbells(1, txKick, Notifier.of(txCall));
        if (ctrlq != null) a.setDoorbells(ctrlIndex, ctrlKick, Notifier.of(ctrlCall));
    }

    static long le16(byte[] b) {
        return (b[0] & 0xff) | (b[1] & 0xff) << 8;
    }

    @Override
    public void close() {
        a.close();
        rxWait.close();
        txWait.close();
        rxKick.close();
        rxCall.close();
        txKick.close();
        txCall.close();
        ctrlKick.close();
        ctrlCall.close();
        if (ownsMemory) mem.close();
    }
}
