package dev.jvbus.connector.vhostuser.hostile;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.model.venet.VenetWire;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A tenant's own venet driver in this JVM, over the container's shm socket: the vbus bring-up
 * (features, NEGCAP for plain frames, IOQ rx and tx rings in a shared memfd, DRIVER_OK, LINKUP), as
 * the venet model's own test guest does it through an attachment. What it then does to its rings is
 * the attack's business.
 */
final class VenetTenant implements AutoCloseable {
    static final int COUNT = 64, BUF = 2048;
    static final long BASE = 0x1000_0000L;

    final Device device;
    final BusClient bus;
    final ClientDevice dev;
    final DriverMemory mem;
    final List<Message.Event> events = new CopyOnWriteArrayList<>();
    private final EventFd[] kicks = {EventFd.create(), EventFd.create()}, calls = {EventFd.create(), EventFd.create()};
    final IoqDriver rx, tx;

    VenetTenant(Lan lan, Device device, String name) throws QueueFault {
        this.device = device;
        this.bus = BusClient.connect(lan.socket, name, new BusEventListener() {
            @Override public void onEvent(Message.Event e) { events.add(e); }
        });
        dev = bus.open(device.devid());
        dev.negotiate(dev.offeredFeatures());
        negcap(VenetWire.CAP_GROUP_SG, 0);
        negcap(VenetWire.CAP_GROUP_EVENTQ, 0);
        mem = dev.shareMemory(name, 1L << 20, BASE);
        long rxHead = mem.allocate(0x2000, 4096), txHead = mem.allocate(0x2000, 4096), bufs = mem.allocate((long) COUNT * BUF, 64);
        // As VenetGuest: the rx ring's notifier is the guest's call eventfd, the tx ring's its kick.
        rx = IoqDriver.create(0, mem.guestMemory(), rxHead, COUNT, Notifier.of(calls[0]), true);
        tx = IoqDriver.create(1, mem.guestMemory(), txHead, COUNT, Notifier.of(kicks[1]), true);
        for (int q = 0; q < 2; q++) {
            long head = q == 0 ? rxHead : txHead;
            dev.setQueue(new QueueConfig(q, COUNT, head + 56, head, 0));
            dev.setDoorbells(q, kicks[q], calls[q]);
        }
        dev.driverOk();
        while (rx.hasRoom()) {
            int slot = rx.nextSlot();
            rx.offer(slot, bufs + (long) slot * BUF, BUF);
        }
        rx.kick();
        dev.callModel(VenetWire.FUNC_LINKUP, new byte[0]);
    }

    private void negcap(int group, int bits) {
        dev.callModel(VenetWire.FUNC_NEGCAP, ByteBuffer.allocate(VenetWire.CAPS_SIZE).order(ByteOrder.LITTLE_ENDIAN).putInt(group).putInt(bits).array());
    }

    /** Offers a tx buffer outside its own memory and kicks: the device's tx worker finds a guest fault. */
    void breakTxRing() throws QueueFault {
        tx.offer(0, 0xDEAD_0000L, 100);
        tx.kick();
    }

    /** The device's tx worker thread (named by the venet model: {@code venet:<container>/<devid>-tx}). */
    Thread txWorker() {
        String name = "venet:" + device.container() + "/" + Integer.toUnsignedString(device.devid().value()) + "-tx";
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no thread " + name));
    }

    @Override
    public void close() {
        try {
            NetTenant.leave(bus, dev, mem);
        } finally {
            for (EventFd e : kicks) e.close();
            for (EventFd e : calls) e.close();
        }
    }
}
