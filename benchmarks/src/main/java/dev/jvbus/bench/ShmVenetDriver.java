package dev.jvbus.bench;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.model.venet.VenetWire;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * The bundled KVM guest driver's venet round trip (connectors/kvm/guest/vbus-guest.c, {@code venet()}), step
 * for step, as a host-side driver over the shm connector: the same rings at the same addresses (64 descriptors,
 * 63 buffers out, 2 KiB buffers), the same bring-up, the same window, frame pattern and check. What differs is
 * the transport of the verbs (frames on a UNIX socket instead of port hypercalls), the doorbell (an eventfd
 * write instead of an ioeventfd port write) and the language. {@link #run} returns the nanoseconds from
 * connecting to the last echo, as the micro-VM's run time goes from its first instruction to EXIT.
 */
final class ShmVenetDriver {
    private static final long WINDOW_BASE = 0x200000, WINDOW_LEN = 0x200000;
    private static final long RING_RX = 0x200000, RING_TX = 0x201000, RING_EVQ = 0x202000;
    private static final long RX_BUFS = 0x210000, TX_BUFS = 0x230000, EV_BUFS = 0x250000;
    private static final int COUNT = 64, BUF = 2048, EV_SIZE = 32, ETHERTYPE = 0x88B5;

    private ShmVenetDriver() {}

    /** Result of one run: its time, and the doorbells the driver rang (tx kicks that were not suppressed). */
    record Run(long nanos, long doorbells) {}

    static Run run(Path socket, DevId devid, long peerMac, int frames, int length, int window) throws QueueFault {
        long t0 = System.nanoTime();
        EventFd[] kicks = {EventFd.create(), EventFd.create(), EventFd.create()};
        EventFd[] calls = {EventFd.create(), EventFd.create(), EventFd.create()};
        DriverMemory memory = null;
        try (BusClient bus = BusClient.connect(socket, "bench-kvm-shm-driver"); ClientDevice dev = bus.open(devid)) {
            memory = dev.shareMemory("bench-venet-driver", WINDOW_LEN, WINDOW_BASE);
            dev.negotiate(VenetModel.EVQ_LINKSTATE.mask());
            negcap(dev, VenetWire.CAP_GROUP_SG, 0);
            negcap(dev, VenetWire.CAP_GROUP_EVENTQ, VenetWire.CAP_EVQ_LINKSTATE);
            byte[] m = dev.callModel(VenetWire.FUNC_MACQUERY, new byte[6]);
            long mac = 0;
            for (byte b : m) mac = mac << 8 | (b & 0xff);
            MemorySegment mem = memory.memfd().segment();
            IoqDriver rx = IoqDriver.create(0, memory.guestMemory(), RING_RX, COUNT, Notifier.of(kicks[0]), true);
            IoqDriver tx = IoqDriver.create(1, memory.guestMemory(), RING_TX, COUNT, Notifier.of(kicks[1]), true);
            IoqDriver evq = IoqDriver.create(2, memory.guestMemory(), RING_EVQ, COUNT, Notifier.of(kicks[2]), true);
            long[] rings = {RING_RX, RING_TX, RING_EVQ};
            for (int q = 0; q < 3; q++) {
                dev.setQueue(new QueueConfig(q, COUNT, rings[q] + 56, rings[q], 0));
                dev.setDoorbells(q, kicks[q], calls[q]);
            }
            dev.driverOk();
            for (int b = 0; b < COUNT - 1; b++) rx.offer(b, RX_BUFS + (long) b * BUF, BUF);
            for (int b = 0; b < COUNT - 1; b++) evq.offer(b, EV_BUFS + (long) b * EV_SIZE, EV_SIZE);
            evq.kick();
            dev.callModel(VenetWire.FUNC_LINKUP, new byte[0]);
            long[] c = new long[2];
            IoqDriver.CompletionSink took = (cookie, len) -> { c[0] = cookie; c[1] = len; };
            while (evq.reap(took, 1) == 0) Thread.onSpinWait();
            if (mem.get(ValueLayout.JAVA_BYTE, EV_BUFS - WINDOW_BASE + c[0] * EV_SIZE + VenetWire.EV_LINKSTATE_STATE) != 1)
                throw new IllegalStateException("the first event is not LINKSTATE(up)");

            long sent = 0, got = 0;
            while (got < frames) {
                while (tx.reap(took, 1) == 1) {
                    if (c[1] == 0) throw new IllegalStateException("tx frame " + c[0] + " dropped");
                }
                boolean staged = false;
                while (sent < frames && sent - got < window && tx.outstanding() + tx.staged() + 1 < COUNT) {
                    int slot = tx.nextSlot();
                    long f = TX_BUFS + (long) slot * BUF;
                    buildFrame(mem, f - WINDOW_BASE, length, peerMac, mac, sent);
                    tx.offerLater(sent, f, length);
                    sent++;
                    staged = true;
                }
                if (staged) tx.kick();
                while (rx.reap(took, 1) == 1) {
                    long b = c[0];
                    checkEcho(mem, RX_BUFS - WINDOW_BASE + b * BUF, c[1], length, mac, peerMac, got);
                    got++;
                    rx.offerLater(b, RX_BUFS + b * BUF, BUF);
                }
                rx.publishOffers();
                Thread.onSpinWait();
            }
            return new Run(System.nanoTime() - t0, tx.signal().signalsSent);
        } finally {
            if (memory != null) memory.close();   // after the device let go of it (DEVCLOSE when the try closed it)
            for (EventFd e : kicks) e.close();
            for (EventFd e : calls) e.close();
        }
    }

    private static void negcap(ClientDevice dev, int gid, int bits) {
        dev.callModel(VenetWire.FUNC_NEGCAP, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(gid).putInt(bits).array());
    }

    /** As the guest builds it: dst, src, ethertype, the sequence number big-endian, then (seq * 31 + i). */
    static void buildFrame(MemorySegment mem, long at, int length, long dst, long src, long seq) {
        for (int i = 0; i < 6; i++) {
            mem.set(ValueLayout.JAVA_BYTE, at + i, (byte) (dst >>> (8 * (5 - i))));
            mem.set(ValueLayout.JAVA_BYTE, at + 6 + i, (byte) (src >>> (8 * (5 - i))));
        }
        mem.set(ValueLayout.JAVA_BYTE, at + 12, (byte) (ETHERTYPE >> 8));
        mem.set(ValueLayout.JAVA_BYTE, at + 13, (byte) ETHERTYPE);
        for (int i = 0; i < 8; i++) mem.set(ValueLayout.JAVA_BYTE, at + 14 + i, (byte) (seq >>> (8 * (7 - i))));
        for (int i = 22; i < length; i++) mem.set(ValueLayout.JAVA_BYTE, at + i, (byte) (seq * 31 + i));
    }

    /** As the guest checks it: byte for byte, from the peer to us. */
    private static void checkEcho(MemorySegment mem, long at, long len, int length, long mac, long peerMac, long seq) {
        if (len != length) throw new IllegalStateException("echo " + seq + " has " + len + " bytes, not " + length);
        for (int i = 0; i < length; i++) {
            byte want = i < 6 ? (byte) (mac >>> (8 * (5 - i)))
                    : i < 12 ? (byte) (peerMac >>> (8 * (11 - i)))
                    : i == 12 ? (byte) (ETHERTYPE >> 8) : i == 13 ? (byte) ETHERTYPE
                    : i < 22 ? (byte) (seq >>> (8 * (21 - i))) : (byte) (seq * 31 + i);
            byte got = mem.get(ValueLayout.JAVA_BYTE, at + i);
            if (got != want) throw new IllegalStateException("echo " + seq + " byte " + i + " is " + got + ", not " + want);
        }
    }
}
