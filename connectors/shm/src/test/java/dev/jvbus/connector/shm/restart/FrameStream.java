package dev.jvbus.connector.shm.restart;

import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.client.ResilientBus;
import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One client streaming sequence-numbered frames from the sender device to the receiver device through the bus's
 * switch, and checking what arrives: each sequence number once, none missing. Both devices on one
 * {@link ResilientBus}, the receiver opened (and so resumed) first, so that after a restart frames the sender
 * replays find the receiver's port up. At most {@link #WINDOW} frames are unaccounted for at any time, fewer
 * than the receiver has rx buffers, so the switch never drops one for want of a buffer.
 */
final class FrameStream {
    static final int RING = 256, WINDOW = 128, HDR = 12, FRAME = 60, SLOT = 128;
    static final long RECEIVER_BASE = 0x4000_0000L, SENDER_BASE = 0x5000_0000L;
    static final long FEATURES = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask() | (1L << 5);

    private final ClientQueue rx, tx;
    private final DriverMemory rmem, smem;
    private final long rxBuffers, txBuffers;
    private final long[] rxAddrOfHead = new long[RING];
    private final int[] txSlotOfHead = new int[RING];
    private final int[] freeTx = new int[WINDOW];
    private int freeTxCount;
    private final BufferList one = new BufferList(1);
    private final byte[] srcMac, dstMac = new byte[6];
    private static final byte[] BROADCAST = {-1, -1, -1, -1, -1, -1};
    /** The sequence number sent to every port (the switch floods it) instead of to the receiver alone; -1 none. */
    long broadcastSeq = -1;

    final BitSet seen = new BitSet();
    volatile long sent, distinct, duplicates, outOfRange;
    volatile long maxGapNanos;
    private long lastArrival;

    /** Sets up both devices (receiver first, with its delivery log unless {@code withoutLog}) and posts the rx buffers. */
    FrameStream(ResilientBus bus, boolean withoutLog) throws QueueFault {
        ClientDevice r = bus.open(RestartBusProcess.RECEIVER);
        r.negotiate(FEATURES);
        rmem = r.shareMemory("restart-receiver", 1 << 20, RECEIVER_BASE);
        if (!withoutLog) {
            long log = rmem.allocate(VirtioNetModel.DELIVERY_LOG_BYTES, 8);
            r.callModelOnResume(VirtioNetModel.CALL_DELIVERY_LOG, BusCall.u64(log));
        }
        rx = r.setUpQueues(rmem, RING, RING).get(0);
        r.driverOk();
        ClientDevice s = bus.open(RestartBusProcess.SENDER);
        s.negotiate(FEATURES);
        srcMac = s.readConfig(0, 6);
        smem = s.shareMemory("restart-sender", 1 << 20, SENDER_BASE);
        List<ClientQueue> sq = s.setUpQueues(smem, RING, RING);
        tx = sq.get(1);
        s.driverOk();
        long dst = MacAddress.parse(RestartBusProcess.RECEIVER_MAC);
        for (int i = 0; i < 6; i++) dstMac[i] = (byte) (dst >>> (8 * (5 - i)));
        rxBuffers = rmem.allocate((long) RING * SLOT, 64);
        txBuffers = smem.allocate((long) WINDOW * SLOT, 64);
        for (int i = 0; i < RING; i++) {
            long a = rxBuffers + (long) i * SLOT;
            rxAddrOfHead[rx.add(one.clear().writable(a, SLOT))] = a;
        }
        rx.kickIfNeeded();
        for (int i = 0; i < WINDOW; i++) freeTx[freeTxCount++] = i;
    }

    /**
     * Streams {@code frames} frames and takes what arrives until every one has, or {@code deadlineNanos}. While the
     * bus is down nothing comes back: the loop sleeps on the rx doorbell (50 ms at a time), it does not spin.
     */
    void run(long frames, long deadlineNanos) throws QueueFault {
        lastArrival = System.nanoTime();
        while (distinct < frames && System.nanoTime() < deadlineNanos) {
            boolean moved = false;
            for (long e; (e = tx.pollUsed()) != -1; ) {
                freeTx[freeTxCount++] = txSlotOfHead[SplitVirtqueueDriver.usedId(e)];
                moved = true;
            }
            while (sent < frames && sent - distinct < WINDOW && freeTxCount > 0) {
                int slot = freeTx[--freeTxCount];
                long at = txBuffers + (long) slot * SLOT;
                MemorySegment f = smem.segment(at, HDR + FRAME);
                f.fill((byte) 0);
                MemorySegment.copy(sent == broadcastSeq ? BROADCAST : dstMac, 0, f, ValueLayout.JAVA_BYTE, HDR, 6);
                MemorySegment.copy(srcMac, 0, f, ValueLayout.JAVA_BYTE, HDR + 6, 6);
                f.set(ValueLayout.JAVA_BYTE, HDR + 12, (byte) 0x88);
                f.set(ValueLayout.JAVA_BYTE, HDR + 13, (byte) 0xb5);
                f.set(ValueLayout.JAVA_LONG_UNALIGNED, HDR + 14, sent);
                int head = tx.add(one.clear().readable(at, HDR + FRAME));
                if (head < 0) throw new IllegalStateException("tx ring full with a free slot");
                txSlotOfHead[head] = slot;
                sent++;
                moved = true;
            }
            tx.kickIfNeeded();
            for (long e; (e = rx.pollUsed()) != -1; ) {
                long a = rxAddrOfHead[SplitVirtqueueDriver.usedId(e)];
                long seq = rmem.segment(a, SLOT).get(ValueLayout.JAVA_LONG_UNALIGNED, HDR + 14);
                arrived(seq);
                rxAddrOfHead[rx.add(one.clear().writable(a, SLOT))] = a;
                moved = true;
            }
            rx.kickIfNeeded();
            if (!moved) rx.awaitUsed(TimeUnit.MILLISECONDS.toNanos(50));
        }
    }

    private void arrived(long seq) {
        if (seq < 0 || seq >= sent) {
            outOfRange++;
            return;
        }
        if (seen.get((int) seq)) {
            duplicates++;
            return;
        }
        seen.set((int) seq);
        long now = System.nanoTime();
        maxGapNanos = Math.max(maxGapNanos, now - lastArrival);
        lastArrival = now;
        distinct++;
    }

    /** Sequence numbers sent and never seen. */
    long lost() {
        return sent - seen.cardinality();
    }
}
