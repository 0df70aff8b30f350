package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.concurrent.locks.LockSupport;

/**
 * One guest's side of a virtio-net device for streaming tests: its memory (a real memfd), both rings
 * and their buffers, driven by one thread ({@link #start}). It sends numbered frames to a peer as
 * fast as the peer takes them and checks that the numbers it receives come one after the other.
 *
 * <p>The window. At most {@link #WINDOW} frames are out whose rx buffer the peer has not yet offered
 * again ({@link #returned}), so the peer's device always has {@code QSIZE - WINDOW} buffers to fill and
 * never drops for lack of one: any missing number is a frame the bus lost. Counting the peer's
 * {@link #received} instead is not enough: a receiver that keeps finding new frames drains them in one
 * loop before it offers the buffers again (loops of 114 frames were seen on an idle machine), and once
 * one ran past {@code QSIZE - WINDOW} its device dropped 30 frames for want of a buffer (NO_RX_BUFFER),
 * which the test then reported as frames lost by the bus.
 */
final class StreamGuest implements AutoCloseable {
    static final long MEM = 2L << 20;
    static final int QSIZE = 256, HDR = 12, FRAME = 64, WINDOW = 64;
    static final long RX_DESC = 0x0, RX_AVAIL = 0x1000, RX_USED = 0x2000;
    static final long TX_DESC = 0x4000, TX_AVAIL = 0x5000, TX_USED = 0x6000;
    static final long TX_BUFFERS = 0x8_0000, RX_BUFFERS = 0x10_0000, SLOT = 0x800;
    /** Where a front-end in the test has this memory mapped: the user addresses it gives the back-end. */
    static final long USER_BASE = 0x7f00_0000_0000L;
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.varHandle();

    final String name;
    final long mac;
    final Memfd mem;
    final GuestMemory memory;
    final EventFd rxKick = EventFd.create(), rxCall = EventFd.create(), txKick = EventFd.create(), txCall = EventFd.create();
    SplitVirtqueueDriver rxq, txq;
    private final ArrayDeque<Integer> freeTx = new ArrayDeque<>(), freeRx = new ArrayDeque<>();
    private final int[] txSlotOf = new int[QSIZE], rxSlotOf = new int[QSIZE];

    /** Where this guest's frames go: its peer's MAC, unless the test sets another (the broadcast address, say). */
    volatile long destination;
    /** Frames to send in all; raised by the test. */
    volatile int sendLimit;
    volatile int sent;
    volatile long received;
    /** Frames received whose rx buffer is offered to the device again; at most {@link #received}. */
    volatile long returned;
    volatile String gap;   // the first out-of-order number received, if any
    /** Frames received whose number had come before (a frame delivered twice); written before {@link #received}. */
    volatile long duplicates;
    private final java.util.BitSet seen = new java.util.BitSet();
    volatile boolean stop;
    volatile Throwable failure;
    private Thread thread;

    StreamGuest(String name, long mac) {
        this(name, mac, Memfd.create(name, MEM));
    }

    /** Over memory the test made (a front-end's unsealed file, say); this guest closes it. */
    StreamGuest(String name, long mac, Memfd mem) {
        this.name = name;
        this.mac = mac;
        this.mem = mem;
        this.memory = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));
        for (int s = 0; s < QSIZE; s++) { freeTx.add(s); freeRx.add(s); }
    }

    void createRings() throws QueueFault {
        rxq = SplitVirtqueueDriver.create(0, QSIZE, RX_DESC, RX_AVAIL, RX_USED, memory, false, false, false, Notifier.of(rxKick));
        txq = SplitVirtqueueDriver.create(1, QSIZE, TX_DESC, TX_AVAIL, TX_USED, memory, false, false, false, Notifier.of(txKick));
        postRx();   // every rx buffer is offered before the device starts
    }

    /**
     * Front-end {@code fe} gives the back-end this guest's memory and both rings (rx 0, tx 1), as QEMU does for a
     * net device: the memory table, then per ring its size, base 0, addresses, doorbells, enable. The rings are
     * made (rx filled) the first time; a front-end that sets the device up again hands the same ones over.
     */
    void shareWith(FrontEnd fe) throws QueueFault {
        fe.sendMemTable(MEM, USER_BASE, mem.fd());
        if (rxq == null) createRings();
        fe.placeRing(0, QSIZE, USER_BASE + RX_DESC, USER_BASE + RX_AVAIL, USER_BASE + RX_USED, rxKick, rxCall, null);
        fe.placeRing(1, QSIZE, USER_BASE + TX_DESC, USER_BASE + TX_AVAIL, USER_BASE + TX_USED, txKick, txCall, null);
    }

    /** The used index the device published on ring {@code usedRing} (RX_USED or TX_USED). */
    int usedIdx(long usedRing) {
        return Short.toUnsignedInt((short) U16.getAcquire(mem.segment(), usedRing + 2));
    }

    /** Starts the driver thread: sends to {@code peer} up to {@link #sendLimit}, keeps rx filled and checked. */
    void start(StreamGuest peer) {
        thread = Thread.ofPlatform().name("guest " + name).daemon().start(() -> {
            try {
                while (!stop) {
                    boolean progress = reclaimTx();
                    progress |= send(peer);
                    progress |= receive();
                    if (!progress) LockSupport.parkNanos(20_000);
                }
            } catch (Throwable e) {
                failure = e;
            }
        });
    }

    private boolean reclaimTx() throws QueueFault {
        boolean any = false;
        for (long e; (e = txq.pollUsed()) >= 0; any = true) freeTx.add(txSlotOf[SplitVirtqueueDriver.usedId(e)]);
        return any;
    }

    private boolean send(StreamGuest peer) throws QueueFault {
        boolean any = false;
        while (sent < sendLimit && sent - peer.returned < WINDOW && !freeTx.isEmpty()) {
            int slot = freeTx.poll();
            MemorySegment s = mem.segment();
            long off = TX_BUFFERS + slot * SLOT;
            s.asSlice(off, HDR).fill((byte) 0);
            MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(destination != 0 ? destination : peer.mac)), 0, s, off + HDR, 6);
            MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(mac)), 0, s, off + HDR + 6, 6);
            s.set(ValueLayout.JAVA_SHORT_UNALIGNED, off + HDR + 12, (short) 0xb588);
            s.set(ValueLayout.JAVA_INT_UNALIGNED, off + HDR + 14, sent);
            int head = txq.add(off, HDR + FRAME, false);
            if (head < 0) throw new AssertionError(name + ": no tx descriptor although a slot was free");
            txSlotOf[head] = slot;
            sent = sent + 1;
            any = true;
        }
        if (any) txq.kickIfNeeded();
        return any;
    }

    private boolean receive() throws QueueFault {
        boolean any = false;
        for (long e; (e = rxq.pollUsed()) >= 0; any = true) {
            int slot = rxSlotOf[SplitVirtqueueDriver.usedId(e)];
            int seq = mem.segment().get(ValueLayout.JAVA_INT_UNALIGNED, RX_BUFFERS + slot * SLOT + HDR + 14);
            if (seq != received && gap == null) gap = "expected frame " + received + ", got " + seq;
            if (seq >= 0 && seen.get(seq)) duplicates = duplicates + 1;
            else if (seq >= 0) seen.set(seq);
            received = received + 1;
            freeRx.add(slot);
        }
        if (any) {
            postRx();
            returned = received;   // every slot received is in the ring again (QSIZE descriptors for QSIZE slots)
        }
        return any;
    }

    private void postRx() throws QueueFault {
        for (Integer slot; (slot = freeRx.peek()) != null; ) {
            int head = rxq.addLater(RX_BUFFERS + slot * SLOT, (int) SLOT, true);
            if (head < 0) break;
            freeRx.poll();
            rxSlotOf[head] = slot;
        }
        rxq.publishAvail();
        rxq.kickIfNeeded();
    }

    /**
     * Whether frame {@code seq} was received. Exact for a caller that read {@link #received} (volatile) after
     * the frame's arrival and while no frame arrives (the bus is stopped): the driver thread sets the bit before.
     */
    boolean hasReceived(int seq) {
        return seen.get(seq);
    }

    /** Distinct frame numbers received. Same rule as {@link #hasReceived}. */
    int distinctReceived() {
        return seen.cardinality();
    }

    void stopAndJoin() throws InterruptedException {
        stop = true;
        if (thread != null) thread.join(30_000);
    }

    @Override
    public void close() throws Exception {
        stopAndJoin();
        for (AutoCloseable c : new AutoCloseable[] {rxKick, rxCall, txKick, txCall, mem}) c.close();
    }
}
