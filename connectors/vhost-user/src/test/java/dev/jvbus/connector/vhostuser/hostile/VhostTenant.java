package dev.jvbus.connector.vhostuser.hostile;

import static dev.jvbus.connector.vhostuser.hostile.FdAttacks.USER_BASE;

import dev.jvbus.connector.vhostuser.FrontEnd;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.connector.vhostuser.VhostUserSession;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A vhost-user front-end with real rings, in this JVM, as QEMU would be for a guest: its guest memory
 * is a memfd mapped (for the protocol) at {@link FdAttacks#USER_BASE}; it sets up the session in QEMU's
 * order (features, protocol features with REPLY_ACK and LOG_SHMFD, SET_OWNER, memory table, both rings)
 * and then drives the tx ring itself: frames from the device's own MAC to {@link Lan#sink}, which keep
 * the device's worker writing used elements (and, while logging, dirty-log marks) without reaching anyone.
 */
final class VhostTenant implements AutoCloseable {
    static final long MEMORY = 4L << 20;
    static final int RING = 256, SLOT = 2048, HDR = 12;
    static final long RX_DESC = 0x1000, RX_AVAIL = 0x2000, RX_USED = 0x3000;
    static final long TX_DESC = 0x9000, TX_AVAIL = 0xA000, TX_USED = 0xB000;
    static final long TX_BUFFERS = 0x10_0000;
    /** Bytes of dirty log for {@link #MEMORY}: one bit per 4 KiB page. */
    static final long LOG_BYTES = MEMORY / Wire.LOG_PAGE / 8;

    final Device device;
    final VhostUserBackend backend;
    final FrontEnd fe;
    final Memfd mem = Memfd.create("vu-guest", MEMORY);
    final GuestMemory guest = GuestMemory.of(new MemoryRegion(0, MEMORY, mem.segment()));
    final EventFd rxKick = EventFd.create(), rxCall = EventFd.create(), txKick = EventFd.create(), txCall = EventFd.create();
    final SplitVirtqueueDriver txq;
    final long mac;
    private final BufferList one = new BufferList(1);
    private final int[] freeSlots = new int[RING], slotOfHead = new int[RING];
    private int free;
    volatile long txCompleted;

    VhostTenant(Lan lan, Device device, String role) throws QueueFault {
        this.device = device;
        this.mac = MacAddress.fromBytes(Arrays.copyOfRange(device.configSnapshot(), VirtioNetModel.CONFIG_MAC, VirtioNetModel.CONFIG_MAC + 6));
        this.backend = lan.serve(device, role);
        this.fe = new FrontEnd(backend.socket());
        fe.negotiate(VirtioFeatures.VERSION_1.mask(), ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
        fe.sendMemTable(MEMORY, USER_BASE, mem.fd());
        SplitVirtqueueDriver.create(0, RING, RX_DESC, RX_AVAIL, RX_USED, guest, false, false, false, Notifier.of(rxKick));   // lays out rx; nothing posted
        txq = SplitVirtqueueDriver.create(1, RING, TX_DESC, TX_AVAIL, TX_USED, guest, false, false, false, Notifier.of(txKick));
        fe.placeRing(0, RING, USER_BASE + RX_DESC, USER_BASE + RX_AVAIL, USER_BASE + RX_USED, rxKick, rxCall, null);
        fe.placeRing(1, RING, USER_BASE + TX_DESC, USER_BASE + TX_AVAIL, USER_BASE + TX_USED, txKick, txCall, null);
        for (int s = 0; s < RING; s++) freeSlots[free++] = s;
        try {
            Lan.await(device + " live under its front-end", () -> device.status().isLive());
        } catch (AssertionError e) {
            VhostUserSession session = backend.session();
            throw new AssertionError(e.getMessage() + "; the back-end's last error: " + (session == null ? "no session" : session.lastError()), e);
        }
    }

    /** Collects finished tx buffers. */
    void reclaim() throws QueueFault {
        long n = 0;
        for (long e; (e = txq.pollUsed()) != -1; n++) freeSlots[free++] = slotOfHead[SplitVirtqueueDriver.usedId(e)];
        if (n > 0) txCompleted += n;
    }

    /** One frame to {@code dst} from the device's own MAC, when a slot is free (waits on the tx call, bounded). */
    void send(long dst, int length, long seq) throws QueueFault {
        long deadline = System.nanoTime() + Lan.WAIT.toNanos();
        while (true) {
            reclaim();
            if (free > 0) break;
            if (System.nanoTime() > deadline) throw new AssertionError(device + ": no tx buffer came back within " + Lan.WAIT);
            if (txq.enableInterrupts()) continue;
            txCall.drain();
            java.util.concurrent.locks.LockSupport.parkNanos(200_000);
        }
        int slot = freeSlots[--free];
        long addr = TX_BUFFERS + (long) slot * SLOT;
        MemorySegment f = mem.segment().asSlice(addr, HDR + length);
        f.asSlice(0, HDR).fill((byte) 0);
        MacAddress.write(f, HDR, dst);
        MacAddress.write(f, HDR + 6, mac);
        f.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), HDR + 12, (short) NetTenant.ETHERTYPE);
        int head = txq.add(one.clear().readable(addr, HDR + length));
        slotOfHead[head] = slot;
        txq.kickIfNeeded();
    }

    /** Offers a tx buffer outside its own memory and kicks: the device's tx worker finds a guest fault. */
    void breakTxRing() throws QueueFault {
        txq.add(one.clear().readable(MEMORY + 0x10_0000, 100));
        txq.kickIfNeeded();
    }

    /** Waits (bounded, {@link Lan#await}) until every tx buffer offered came back. */
    void awaitTxBack(String what) {
        Lan.await(what, () -> {
            try {
                reclaim();
            } catch (QueueFault e) {
                throw new AssertionError(e);
            }
            return txOutstanding() == 0;
        });
    }

    int txOutstanding() {
        return txq.outstanding();
    }

    @Override
    public void close() {
        fe.close();
        backend.close();
        for (EventFd e : new EventFd[] {rxKick, rxCall, txKick, txCall}) e.close();
        mem.close();
    }
}
