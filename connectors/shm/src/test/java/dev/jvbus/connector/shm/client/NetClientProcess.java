package dev.jvbus.connector.shm.client;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * A virtio-net driver in its own JVM, as a host application would be, for {@link FramesAcrossProcessesTest}.
 * Arguments: {@code send|receive <socket> <devid> <peer-mac> <frames> <rx-buffer-bytes> <peer-rx-buffers> <peer-rx-buffer-bytes> <peer-mergeable>}.
 *
 * <p>Both roles connect, open their device, negotiate (VERSION_1, MAC, MTU, MRG_RXBUF, EVENT_IDX; the
 * operator's limit may take some away), lay out rx (queue 0) and tx (queue 1) in their own memfd, post
 * one rx buffer of {@code rx-buffer-bytes} per rx ring slot and print {@code READY}.
 *
 * <ul>
 *   <li>{@code receive}: takes frames off rx, checks each (addresses, EtherType, sequence number equal
 *       to the count so far, length, every payload byte, the virtio_net_hdr and its num_buffers), reposts
 *       the buffers, and every {@link #ACK_EVERY} reposted buffers (and after the last frame) sends the
 *       sender an ack frame carrying frames received and buffers reposted. Prints {@code RECEIVED}.</li>
 *   <li>{@code send}: waits for {@code go} on stdin, then sends {@code frames} frames to the peer,
 *       never letting the rx buffers it may have used ({@code sent - acked}, in the peer's buffers)
 *       exceed {@code peer-rx-buffers}, so the peer always has a buffer for every frame. Prints
 *       {@code SENT} once the final ack arrived.</li>
 * </ul>
 * Then both wait for a line on stdin and close in order. Nothing is allocated per frame.
 *
 * <p>Streaming ({@code frames} given as {@code stream}, for a harness that runs as long as something
 * else takes): the sender sends until a {@code stop} line on stdin, prints {@code STOPPED frames=N}
 * with the total it sent, waits until all of it is acked and prints {@code SENT}; the parent passes the
 * total on to the receiver ({@code stop N}), which from then on works as with a fixed count of N: it
 * acks after the last frame and prints {@code RECEIVED}. (Acking the tail any other way, say whenever
 * the rx ring runs empty, could send more acks than the sender has rx buffers for.) A line after that
 * closes either, as above.
 */
public final class NetClientProcess {
    static final int HDR = 12;                         // virtio_net_hdr_v1 with VERSION_1
    static final int ETHERTYPE_DATA = 0x88b5, ETHERTYPE_ACK = 0x88b6;
    static final int MIN_FRAME = 60, MAX_FRAME = 1514;
    static final int ACK_EVERY = 128;                  // reposted rx buffers per ack frame
    static final int TX_SLOT = 2048;
    static final long GUEST_BASE = 0x4000_0000L;
    static final long TIMEOUT = TimeUnit.SECONDS.toNanos(20);
    /** Frames to send or receive when streaming: until stopped. */
    public static final long STREAM = Long.MAX_VALUE;
    /** A stream runs beside attacks on a busy machine: a pause this long means the bus wedged it, not load. */
    static final long STREAM_TIMEOUT = TimeUnit.SECONDS.toNanos(120);
    static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Payload bytes: frame seq carries {@code PATTERN[patternStart(seq) + i]} from byte 22 on. */
    static final MemorySegment PATTERN;

    static {
        byte[] p = new byte[4096 + MAX_FRAME];
        new Random(0x6a766275L).nextBytes(p);
        PATTERN = MemorySegment.ofArray(p);
    }

    static long mix(long seq) {
        long z = (seq + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 31)) * 0xBF58476D1CE4E5B9L;
        return z ^ (z >>> 29);
    }

    /** Length of frame {@code seq}: 60..1514, spread over the whole range. */
    public static int frameLength(long seq) {
        return MIN_FRAME + (int) ((mix(seq) >>> 1) % (MAX_FRAME - MIN_FRAME + 1));
    }

    static int patternStart(long seq) {
        return (int) (mix(seq) >>> 52);                // 0..4095
    }

    /** Rx buffers a frame of {@code length} takes at a receiver posting {@code bufLen}-byte buffers. */
    static int buffersFor(int length, int bufLen, boolean mergeable) {
        return mergeable ? (HDR + length + bufLen - 1) / bufLen : 1;
    }

    private final ClientDevice dev;
    private final DriverMemory mem;
    private final MemorySegment seg;
    private final ClientQueue rx, tx;
    private final SplitVirtqueueDriver rxq, txq;
    private final long myMac, peerMac;
    private final boolean mergeable;
    private final int rxBufLen;
    private final long[] rxAddrOfHead;
    private final int[] txSlotOfHead;
    private final int[] freeTxSlots;
    private int freeTxCount;
    private final long txBase;
    private final BufferList one = new BufferList(1);
    private final DoorbellWait wait = new DoorbellWait();
    private long rxBuffersReposted;
    // Streaming only: stdin's "stop" sets the flag and rings the bell, so a receiver asleep on an empty ring wakes for it.
    private final EventFd stopBell = EventFd.create();
    private volatile boolean stopRequested;
    private volatile long streamTotal = STREAM;      // the receiver's: what the sender says it sent, once stopped
    private long timeout = TIMEOUT;

    NetClientProcess(ClientDevice dev, long peerMac, int rxSize, int txSize, int rxBufLen) throws QueueFault {
        this.dev = dev;
        this.peerMac = peerMac;
        this.rxBufLen = rxBufLen;
        long want = VirtioFeatures.VERSION_1.mask() | VirtioFeatures.EVENT_IDX.mask()
                | VirtioNetFeatures.MAC.mask() | VirtioNetFeatures.MTU.mask() | VirtioNetFeatures.MRG_RXBUF.mask()
                | VirtioNetFeatures.STATUS.mask();
        long features = dev.negotiate(want);
        if (!VirtioFeatures.VERSION_1.in(features)) throw new AssertionError("VERSION_1 not negotiated: 0x" + Long.toHexString(features));
        mergeable = VirtioNetFeatures.MRG_RXBUF.in(features);
        myMac = MacAddress.fromBytes(dev.readConfig(VirtioNetModel.CONFIG_MAC, 6));
        long bytes = (1L << 16) + (long) rxSize * rxBufLen + (long) txSize * TX_SLOT + (1L << 20);
        mem = dev.shareMemory("net-" + dev.devid(), (bytes + 0xfffff) & ~0xfffffL, GUEST_BASE);
        seg = mem.memfd().segment();
        List<ClientQueue> qs = dev.setUpQueues(mem, rxSize, txSize);
        rx = qs.get(0);
        tx = qs.get(1);
        rxq = rx.driver();
        txq = tx.driver();
        long rxBase = mem.allocate((long) rxSize * rxBufLen, 64);
        txBase = mem.allocate((long) txSize * TX_SLOT, 64);
        rxAddrOfHead = new long[rxSize];
        txSlotOfHead = new int[txSize];
        freeTxSlots = new int[txSize];
        for (int s = 0; s < txSize; s++) freeTxSlots[freeTxCount++] = s;
        dev.driverOk();
        for (int i = 0; i < rxSize; i++) postRx(rxBase + (long) i * rxBufLen);
        rxq.kickIfNeeded();
        wait.add(rx.callFd());
        wait.add(tx.callFd());
        wait.add(stopBell);
        System.out.println("READY " + dev.devid() + " mac=" + MacAddress.toString(myMac) + " features=0x" + Long.toHexString(features)
                + " mergeable=" + mergeable + " rx=" + rxSize + "x" + rxBufLen + " tx=" + txSize);
        System.out.flush();
    }

    private void postRx(long addr) throws QueueFault {
        int head = rxq.add(one.clear().writable(addr, rxBufLen));
        if (head < 0) throw new AssertionError("rx ring full while reposting");
        rxAddrOfHead[head] = addr;
    }

    private long off(long guestAddr) {
        return guestAddr - GUEST_BASE;
    }

    /** Returns completed tx slots to the free stack; returns how many. */
    private long reclaimTx() throws QueueFault {
        long n = 0;
        for (long e; (e = txq.pollUsed()) != -1; n++) freeTxSlots[freeTxCount++] = txSlotOfHead[SplitVirtqueueDriver.usedId(e)];
        return n;
    }

    private boolean txSlotFree() {
        return freeTxCount > 0 && txq.freeDescriptors() > 0;
    }

    private long txSlotOffset(int slot) {
        return off(txBase) + (long) slot * TX_SLOT;
    }

    /** Offers tx slot {@code slot} (a zero header, then the {@code length}-byte frame already written after it). */
    private void txAdd(int slot, int length) throws QueueFault {
        seg.asSlice(txSlotOffset(slot), HDR).fill((byte) 0);
        int head = txq.add(one.clear().readable(txBase + (long) slot * TX_SLOT, HDR + length));
        if (head < 0) throw new AssertionError("tx descriptor missing although checked");
        txSlotOfHead[head] = slot;
    }

    /** Sleeps until {@code ready} holds, after re-arming interrupts on rx (and tx if asked); fails after the timeout. */
    private void await(boolean onTx, java.util.function.BooleanSupplier ready, String what) {
        long deadline = System.nanoTime() + timeout;
        while (true) {
            boolean pending = rxq.enableInterrupts();
            if (onTx) pending |= txq.enableInterrupts();
            if (pending || ready.getAsBoolean()) break;
            long left = deadline - System.nanoTime();
            if (left <= 0) throw new AssertionError("nothing for " + timeout / 1_000_000_000L + " s while " + what + "; rx " + rxq + ", tx " + txq);
            wait.await(ready, left);
            if (ready.getAsBoolean()) break;
        }
        rxq.disableInterrupts();
        txq.disableInterrupts();
    }

    // ================================================================ sender

    void send(long frames, int peerRxBuffers, int peerBufLen, boolean peerMergeable) throws QueueFault {
        long sent = 0, sentBufs = 0, ackedFrames = 0, ackedBufs = 0, acks = 0;
        long start = System.nanoTime();
        while (ackedFrames < frames) {
            if (frames == STREAM && stopRequested) {
                frames = sent;                         // stop adding; the loop ends once all of them are acked
                System.out.println("STOPPED frames=" + sent);
                System.out.flush();
                continue;
            }
            reclaimTx();
            // acks first: they open the window
            for (long e; (e = rxq.pollUsed()) != -1; ) {
                long addr = rxAddrOfHead[SplitVirtqueueDriver.usedId(e)];
                int len = (int) SplitVirtqueueDriver.usedLength(e);
                long o = off(addr);
                if (len < HDR + 30 || (seg.get(BE16, o + HDR + 12) & 0xffff) != ETHERTYPE_ACK)
                    throw new AssertionError("sender got a frame that is not an ack: " + len + " bytes");
                long f = seg.get(LE64, o + HDR + 14), b = seg.get(LE64, o + HDR + 22);
                if (f < ackedFrames || b < ackedBufs || f > sent || b > sentBufs)
                    throw new AssertionError("ack out of order: frames " + f + " buffers " + b + " after " + ackedFrames + "/" + ackedBufs + ", sent " + sent);
                ackedFrames = f;
                ackedBufs = b;
                acks++;
                postRx(addr);
            }
            rxq.kickIfNeeded();
            boolean added = false;
            while (sent < frames && txSlotFree()) {
                int len = frameLength(sent);
                int need = buffersFor(len, peerBufLen, peerMergeable);
                if (sentBufs + need - ackedBufs > peerRxBuffers) break;
                int slot = freeTxSlots[--freeTxCount];
                long o = txSlotOffset(slot) + HDR;
                MacAddress.write(seg, o, peerMac);
                MacAddress.write(seg, o + 6, myMac);
                seg.set(BE16, o + 12, (short) ETHERTYPE_DATA);
                seg.set(LE64, o + 14, sent);
                MemorySegment.copy(PATTERN, patternStart(sent), seg, o + 22, len - 22);
                txAdd(slot, len);
                sent++;
                sentBufs += need;
                added = true;
            }
            if (added) {
                txq.kickIfNeeded();
                continue;
            }
            if (ackedFrames == frames) break;
            boolean txBlocked = sent < frames && !txSlotFree();
            await(txBlocked, () -> rxq.hasUsed() || txBlocked && txq.hasUsed(), "sending (sent " + sent + ", acked " + ackedFrames + ")");
        }
        long nanos = System.nanoTime() - start;
        while (txq.outstanding() > 0) {
            if (reclaimTx() == 0) await(true, txq::hasUsed, "draining tx");
        }
        System.out.printf("SENT frames=%d acks=%d seconds=%.3f rate=%.0f txKicks=%d txKicksSuppressed=%d rxKicks=%d"
                        + " interrupts=%d sleeps=%d spinHits=%d%n",
                sent, acks, nanos / 1e9, sent / (nanos / 1e9), txq.kicksSent(), txq.kicksSuppressed(), rxq.kicksSent(),
                wait.doorbellWakes(), wait.sleeps(), wait.spinHits());
    }

    // ================================================================ receiver

    void receive(long frames) throws QueueFault {
        MemorySegment scratch = MemorySegment.ofArray(new byte[MAX_FRAME]);
        long received = 0, merged = 0, acks = 0, ackedBufs = 0, ackedFrames = 0, bytes = 0;
        long start = 0;
        long total;
        while (received < (total = frames == STREAM ? streamTotal : frames)) {
            long e = rxq.pollUsed();
            if (e == -1) {
                rxq.kickIfNeeded();
                reclaimTx();
                await(false, () -> rxq.hasUsed() || frames == STREAM && streamTotal != STREAM, "receiving (received " + received + ")");
                continue;
            }
            if (received == 0) start = System.nanoTime();
            long addr = rxAddrOfHead[SplitVirtqueueDriver.usedId(e)];
            int len = (int) SplitVirtqueueDriver.usedLength(e);
            long o = off(addr);
            int flags = seg.get(ValueLayout.JAVA_BYTE, o) & 0xff, gso = seg.get(ValueLayout.JAVA_BYTE, o + 1) & 0xff;
            int nb = seg.get(LE16, o + 10) & 0xffff;
            if (flags != 0 || gso != 0) throw new AssertionError("frame " + received + ": header flags " + flags + " gso " + gso);
            if (len < HDR || len > rxBufLen) throw new AssertionError("frame " + received + ": used length " + len + " of a " + rxBufLen + "-byte buffer");
            int got = len - HDR;
            MemorySegment.copy(seg, o + HDR, scratch, 0, Math.min(got, MAX_FRAME));
            postRx(addr);
            for (int i = 1; i < nb; i++) {
                long e2 = rxq.pollUsed();
                if (e2 == -1) throw new AssertionError("frame " + received + ": num_buffers " + nb + " but only " + i + " used");
                long a2 = rxAddrOfHead[SplitVirtqueueDriver.usedId(e2)];
                int l2 = (int) SplitVirtqueueDriver.usedLength(e2);
                if (got + l2 > MAX_FRAME) throw new AssertionError("frame " + received + " longer than " + MAX_FRAME);
                MemorySegment.copy(seg, off(a2), scratch, got, l2);
                got += l2;
                postRx(a2);
            }
            if (nb > 1) merged++;
            int expectLen = frameLength(received);
            if (nb != buffersFor(expectLen, rxBufLen, mergeable))
                throw new AssertionError("frame " + received + " of " + expectLen + " bytes: num_buffers " + nb);
            rxBuffersReposted += nb;
            if (got < 22 || (scratch.get(BE16, 12) & 0xffff) != ETHERTYPE_DATA)
                throw new AssertionError("frame " + received + ": not a data frame (" + got + " bytes)");
            long seq = scratch.get(LE64, 14);
            if (seq != received)
                throw new AssertionError("frame " + received + " expected, sequence number " + seq + " arrived (" + (seq < received ? "duplicate or reordered" : "lost frames") + ")");
            if (got != expectLen) throw new AssertionError("frame " + seq + ": " + got + " bytes, sent " + expectLen);
            if (MacAddress.read(scratch, 0) != myMac || MacAddress.read(scratch, 6) != peerMac)
                throw new AssertionError("frame " + seq + ": addresses " + MacAddress.toString(MacAddress.read(scratch, 0)) + " <- " + MacAddress.toString(MacAddress.read(scratch, 6)));
            int p = patternStart(seq);
            long bad = MemorySegment.mismatch(scratch, 22, got, PATTERN, p, p + got - 22);
            if (bad != -1) throw new AssertionError("frame " + seq + " corrupted at byte " + (22 + bad));
            received++;
            bytes += got;
            if (rxBuffersReposted - ackedBufs >= ACK_EVERY || received == total) {
                rxq.kickIfNeeded();                    // reposted buffers are published before the ack says so
                sendAck(received, rxBuffersReposted);
                ackedBufs = rxBuffersReposted;
                ackedFrames = received;
                acks++;
            }
        }
        if (ackedFrames < received) {                  // streaming: the total came after its last frame
            rxq.kickIfNeeded();
            sendAck(received, rxBuffersReposted);
            acks++;
        }
        long nanos = System.nanoTime() - start;
        while (txq.outstanding() > 0) {
            if (reclaimTx() == 0) await(true, txq::hasUsed, "draining acks");
        }
        System.out.printf("RECEIVED frames=%d inOrder=true intact=true merged=%d bytes=%d acks=%d seconds=%.3f rxKicks=%d txKicks=%d"
                        + " interrupts=%d sleeps=%d spinHits=%d%n",
                received, merged, bytes, acks, nanos / 1e9, rxq.kicksSent(), txq.kicksSent(),
                wait.doorbellWakes(), wait.sleeps(), wait.spinHits());
    }

    private void sendAck(long frames, long buffers) throws QueueFault {
        reclaimTx();
        while (!txSlotFree()) {
            await(true, txq::hasUsed, "waiting for an ack slot");
            reclaimTx();
        }
        int slot = freeTxSlots[--freeTxCount];
        long o = txSlotOffset(slot) + HDR;
        seg.asSlice(o, MIN_FRAME).fill((byte) 0);
        MacAddress.write(seg, o, peerMac);
        MacAddress.write(seg, o + 6, myMac);
        seg.set(BE16, o + 12, (short) ETHERTYPE_ACK);
        seg.set(LE64, o + 14, frames);
        seg.set(LE64, o + 22, buffers);
        txAdd(slot, MIN_FRAME);
        txq.kickIfNeeded();
    }

    /** Streaming: a thread takes "stop" (the sender's) or "stop N" (the receiver's), then the next line or end of input (lets main close). */
    private void listenForStop(BufferedReader stdin, java.util.concurrent.CountDownLatch quit) {
        timeout = STREAM_TIMEOUT;
        Thread.ofPlatform().daemon().name("stdin").start(() -> {
            try {
                String line = stdin.readLine();
                if (line == null || !line.startsWith("stop")) throw new IllegalStateException("expected 'stop' on stdin, got " + line);
                if (line.startsWith("stop ")) streamTotal = Long.parseLong(line.substring(5).trim());
                stopRequested = true;
                stopBell.signal();
                if (line != null) stdin.readLine();
            } catch (java.io.IOException | RuntimeException e) {
                System.out.println("FAILED stdin: " + e);
                System.out.flush();
                System.exit(1);
            } finally {
                quit.countDown();
            }
        });
    }

    public static void main(String[] args) throws Exception {
        String role = args[0];
        Path socket = Path.of(args[1]);
        DevId devid = DevId.parse(args[2]);
        long peerMac = MacAddress.parse(args[3]);
        long frames = args[4].equals("stream") ? STREAM : Long.parseLong(args[4]);
        int rxBufLen = Integer.parseInt(args[5]);
        int peerRxBuffers = Integer.parseInt(args[6]);
        int peerBufLen = Integer.parseInt(args[7]);
        boolean peerMergeable = Boolean.parseBoolean(args[8]);
        boolean sender = role.equals("send");
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (BusClient bus = BusClient.connect(socket, role + "-" + ProcessHandle.current().pid());
             ClientDevice dev = bus.open(devid)) {
            NetClientProcess net = new NetClientProcess(dev, peerMac, sender ? 256 : 1024, sender ? 1024 : 256, rxBufLen);
            try {
                if (sender && !"go".equals(stdin.readLine())) throw new AssertionError("expected 'go' on stdin");
                java.util.concurrent.CountDownLatch quit = new java.util.concurrent.CountDownLatch(1);
                if (frames == STREAM) net.listenForStop(stdin, quit);
                if (sender) net.send(frames, peerRxBuffers, peerBufLen, peerMergeable);
                else net.receive(frames);
                System.out.flush();
                if (frames == STREAM) quit.await();    // the parent reads the switch's counters meanwhile
                else stdin.readLine();
            } finally {
                net.wait.close();
                net.stopBell.close();
                dev.close();
                net.mem.close();
            }
        } catch (Throwable t) {
            System.out.println("FAILED " + t);
            t.printStackTrace(System.out);
            System.out.flush();
            System.exit(1);
        }
        System.out.println("CLOSED");
    }
}
