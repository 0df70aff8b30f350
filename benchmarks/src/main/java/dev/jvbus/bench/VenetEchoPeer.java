package dev.jvbus.bench;

import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.model.venet.VenetWire;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The far end of the KVM benchmark's round trips: a venet device on the driver's switch, driven in this JVM
 * (IOQ rings in a memfd of its own, attached directly, no connector), that sends every frame back to its
 * sender from its own MAC. One thread; it spins while frames come and parks briefly when none do, the same
 * for every driver it answers, so it costs the KVM and the shm runs alike.
 */
final class VenetEchoPeer implements AutoCloseable {
    private static final long BASE = 0x1000_0000L, SIZE = 4L << 20;
    private static final int COUNT = 256, BUF = 2048;
    private static final long RING_RX = BASE, RING_TX = BASE + 0x4000, RX_BUFS = BASE + 0x10000, TX_BUFS = BASE + 0x100000;
    private static final long IDLE_SPINS = 20_000;

    private final Memfd memfd = Memfd.create("bench-echo-peer", SIZE);
    private final MemorySegment mem = memfd.segment();
    private final GuestMemory memory = GuestMemory.of(new MemoryRegion(BASE, SIZE, mem));
    private final EventFd[] kicks = {EventFd.create(), EventFd.create()}, calls = {EventFd.create(), EventFd.create()};
    private final Attachment att;
    private final IoqDriver rx, tx;
    private final byte[] mac;
    private final Thread thread;
    private volatile boolean stop;
    private volatile Throwable failure;
    /** Frames echoed (the peer thread writes it). */
    volatile long echoed;

    // one reap's worth of completed rx buffers (the peer thread only)
    private final long[] rxCookie = new long[COUNT], rxLength = new long[COUNT];
    private int rxGot;
    private final IoqDriver.CompletionSink took = this::took, ignored = (cookie, length) -> {};

    VenetEchoPeer(Device device) throws DeviceFault, QueueFault {
        att = device.attach("bench-echo-peer", null);
        att.addStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
        att.ackFeatures(0);
        att.addStatus(DeviceStatus.FEATURES_OK);
        att.setMemory(memory);
        rx = IoqDriver.create(VenetWire.QUEUE_RX, memory, RING_RX, COUNT, Notifier.of(kicks[0]), true);
        tx = IoqDriver.create(VenetWire.QUEUE_TX, memory, RING_TX, COUNT, Notifier.of(kicks[1]), true);
        att.setQueue(new QueueConfig(VenetWire.QUEUE_RX, COUNT, RING_RX + 56, RING_RX, 0));
        att.setDoorbells(VenetWire.QUEUE_RX, kicks[0], Notifier.of(calls[0]));
        att.setQueue(new QueueConfig(VenetWire.QUEUE_TX, COUNT, RING_TX + 56, RING_TX, 0));
        att.setDoorbells(VenetWire.QUEUE_TX, kicks[1], Notifier.of(calls[1]));
        att.addStatus(DeviceStatus.DRIVER_OK);
        for (int b = 0; rx.hasRoom(); b++) rx.offer(b, RX_BUFS + (long) b * BUF, BUF);
        mac = att.call(VenetWire.FUNC_MACQUERY, new byte[6]);
        att.call(VenetWire.FUNC_LINKUP, new byte[0]);
        thread = Thread.ofPlatform().daemon().name("bench-echo-peer").start(this::loop);
    }

    long mac() { return MacAddress.fromBytes(mac); }

    private void loop() {
        long idle = 0;
        try {
            while (!stop) {
                tx.reap(ignored, Integer.MAX_VALUE);
                rxGot = 0;
                int room = COUNT - tx.outstanding() - tx.staged();
                rx.reap(took, room);
                for (int i = 0; i < rxGot; i++) {
                    int slot = tx.nextSlot();
                    long from = RX_BUFS + rxCookie[i] * BUF - BASE, to = TX_BUFS + (long) slot * BUF - BASE;
                    int len = (int) rxLength[i];
                    MemorySegment.copy(mem, from, mem, to, len);
                    MemorySegment.copy(mem, from + 6, mem, to, 6);                      // back to the sender
                    MemorySegment.copy(mac, 0, mem, ValueLayout.JAVA_BYTE, to + 6, 6);   // from us: the switch holds us to our MAC
                    tx.offerLater(slot, to + BASE, len);
                    rx.offerLater(rxCookie[i], RX_BUFS + rxCookie[i] * BUF, BUF);
                }
                if (rxGot > 0) {
                    rx.publishOffers();
                    tx.kick();
                    echoed += rxGot;
                    idle = 0;
                } else if (++idle > IDLE_SPINS) {
                    java.util.concurrent.locks.LockSupport.parkNanos(20_000);
                } else {
                    Thread.onSpinWait();
                }
            }
        } catch (Throwable t) {
            failure = t;
        }
    }

    private void took(long cookie, long length) {
        rxCookie[rxGot] = cookie;
        rxLength[rxGot] = length;
        rxGot++;
    }

    /** Throws if the peer thread failed. */
    void check() {
        if (failure != null) throw new IllegalStateException("the echo peer failed: " + failure, failure);
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(10_000);
        if (thread.isAlive()) return;   // stuck in a ring: leave its memory mapped
        att.close();
        for (EventFd e : kicks) e.close();
        for (EventFd e : calls) e.close();
        memfd.close();
    }
}
