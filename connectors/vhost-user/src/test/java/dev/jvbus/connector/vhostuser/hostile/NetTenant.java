package dev.jvbus.connector.vhostuser.hostile;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A tenant's own virtio-net driver in this JVM, over the container's shm socket like any client:
 * opens its device, negotiates VERSION_1 only (a header of 12 bytes, an interrupt per used batch),
 * shares a memfd, sets up rx and tx, and then sends whatever frames the attack wants (any source MAC,
 * any destination). Its rx ring gets {@code rxBuffers} buffers once and, unless {@link #receive} is
 * called, never more: a receiver that stops taking frames.
 *
 * <p>One thread sends; {@link #txCompleted} may be read from others.
 */
final class NetTenant implements AutoCloseable {
    static final int HDR = 12, SLOT = 2048, RING = 256;
    static final long BASE = 0x4000_0000L;
    static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final int ETHERTYPE = 0x88b7;

    final Device device;
    final long mac;
    final BusClient bus;
    final ClientDevice dev;
    final DriverMemory mem;
    final ClientQueue rx, tx;
    final List<Message.Event> events = new CopyOnWriteArrayList<>();
    private final SplitVirtqueueDriver txq, rxq;
    private final BufferList one = new BufferList(1);
    private final long txBase, rxBase;
    private final int[] freeSlots = new int[RING];
    private final int[] slotOfHead = new int[RING];
    private final long[] rxAddrOfHead = new long[RING];
    private int free;
    volatile long txCompleted;
    long sent, received;

    NetTenant(Lan lan, Device device, String name, int rxBuffers) {
        this.device = device;
        this.bus = BusClient.connect(lan.socket, name, new BusEventListener() {
            @Override public void onEvent(Message.Event e) { events.add(e); }
        });
        ClientDevice d = null;
        DriverMemory m = null;
        try {
            d = bus.open(device.devid());
            d.negotiate(VirtioFeatures.VERSION_1.mask());
            mac = MacAddress.fromBytes(d.readConfig(VirtioNetModel.CONFIG_MAC, 6));
            m = d.shareMemory(name, 2L << 20, BASE);
            List<ClientQueue> qs = d.setUpQueues(m, RING, RING);
            rx = qs.get(0);
            tx = qs.get(1);
            rxq = rx.driver();
            txq = tx.driver();
            rxBase = m.allocate((long) RING * SLOT, 64);
            txBase = m.allocate((long) RING * SLOT, 64);
            for (int s = 0; s < RING; s++) freeSlots[free++] = s;
            d.driverOk();
            for (int i = 0; i < rxBuffers; i++) postRx(rxBase + (long) i * SLOT);
            rxq.kickIfNeeded();
            dev = d;
            mem = m;
        } catch (RuntimeException | QueueFault e) {
            if (d != null) d.close();
            if (m != null) m.close();
            bus.close();
            throw e instanceof RuntimeException re ? re : new IllegalStateException(e);
        }
    }

    private void postRx(long addr) throws QueueFault {
        rxAddrOfHead[rxq.add(one.clear().writable(addr, SLOT))] = addr;
    }

    private MemorySegment at(long guest, long len) {
        return mem.segment(guest, len);
    }

    /** Collects finished tx buffers; returns how many. */
    int reclaim() throws QueueFault {
        int n = 0;
        for (long e; (e = txq.pollUsed()) != -1; n++) freeSlots[free++] = slotOfHead[SplitVirtqueueDriver.usedId(e)];
        if (n > 0) txCompleted += n;
        return n;
    }

    /** Puts one frame {@code dst <- src} of {@code length} bytes on tx; false if the ring is full. Kicks. */
    boolean send(long dst, long src, int length, long seq) throws QueueFault {
        reclaim();
        if (free == 0) return false;
        int slot = freeSlots[--free];
        long addr = txBase + (long) slot * SLOT;
        MemorySegment f = at(addr, HDR + length);
        f.asSlice(0, HDR).fill((byte) 0);
        MacAddress.write(f, HDR, dst);
        MacAddress.write(f, HDR + 6, src);
        f.set(BE16, HDR + 12, (short) ETHERTYPE);
        if (length >= 22) f.set(LE64, HDR + 14, seq);
        int head = txq.add(one.clear().readable(addr, HDR + length));
        if (head < 0) throw new AssertionError("tx descriptor missing although a slot was free");
        slotOfHead[head] = slot;
        txq.kickIfNeeded();
        sent++;
        return true;
    }

    /** {@link #send}, waiting (on the tx call eventfd, bounded) for room. */
    void sendBlocking(long dst, long src, int length, long seq) throws QueueFault {
        long deadline = System.nanoTime() + Lan.WAIT.toNanos();
        while (!send(dst, src, length, seq)) {
            if (System.nanoTime() > deadline)
                throw new AssertionError(device + ": no tx buffer came back within " + Lan.WAIT + " (sent " + sent + ", completed " + txCompleted + ")");
            tx.awaitUsed(TimeUnit.MILLISECONDS.toNanos(50));
        }
    }

    /**
     * Teaches the switch this device's MAC without reaching anyone: one frame to {@link Lan#sink}, whose
     * MAC the switch knew before the pair's ports joined. (A frame to an unknown MAC, the device's own
     * included, is flooded to every port, the pair's too.) From then on frames for this MAC go to its
     * port only.
     */
    void announce(Lan lan) throws QueueFault {
        sendBlocking(lan.sink.mac, mac, 60, 0);
        awaitLearned(lan);
    }

    void awaitLearned(Lan lan) {
        Lan.await(device + "'s MAC learned on its port", () -> Lan.portName(device).equals(lan.sw.macTable().get(MacAddress.toString(mac))));
    }

    /** Takes what arrived on rx and reposts the buffers; returns how many frames. */
    int receive() throws QueueFault {
        int n = 0;
        for (long e; (e = rxq.pollUsed()) != -1; n++) {
            postRx(rxAddrOfHead[SplitVirtqueueDriver.usedId(e)]);
        }
        if (n > 0) rxq.kickIfNeeded();
        received += n;
        return n;
    }

    /** Tx buffers the device has not given back yet. */
    int txOutstanding() {
        return txq.outstanding();
    }

    @Override
    public void close() {
        leave(bus, dev, mem);
    }

    /**
     * A tenant's shm client going away: DEVCLOSE while the connection lasts (the bus may have unplugged
     * the device first; the session's end frees it anyway), then the connection and the shared memory.
     */
    static void leave(BusClient bus, ClientDevice dev, DriverMemory mem) {
        try {
            if (bus.isConnected()) dev.close();
        } catch (RuntimeException e) {
            // unplugged first: nothing left to close on the bus's side
        } finally {
            bus.close();
            mem.close();
        }
    }
}
