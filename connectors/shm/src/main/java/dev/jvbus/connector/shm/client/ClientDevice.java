package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.PayloadReader;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitRingLayout;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import java.util.ArrayList;
import java.util.List;

/**
 * A device this client opened: the driver's verbs over DEVCALL, memory over DEVSHM, doorbells over
 * SIGNAL. The usual order (PROTOCOL.md, "Session"):
 * <pre>{@code
 * long features = dev.negotiate(wanted);            // ACKNOWLEDGE, DRIVER, ack, FEATURES_OK
 * DriverMemory mem = dev.shareMemory("rings", 1 << 20, 0);
 * List<ClientQueue> queues = dev.setUpQueues(mem, 256, 256);
 * dev.driverOk();                                  // the device starts its queues
 * }</pre>
 * Closing it (DEVCLOSE) resets the device on the bus and frees it for the next driver.
 */
public final class ClientDevice implements AutoCloseable {
    private final BusClient bus;
    private final DevId devid;
    private final List<ClientQueue> queues = new ArrayList<>();
    private final List<Region> regions = new ArrayList<>();
    /** Model verbs that set the device up, made again when it is resumed on a restarted bus ({@link #callModelOnResume}). */
    private final List<ModelCall> setUpCalls = new ArrayList<>();
    private long negotiated = -1;   // the features the rings were set up under; -1 before
    private boolean closed;

    private record ModelCall(int func, byte[] payload) { }

    /** Memory shared with the device, as DEVSHM gave it: shared again when the device moves to another bus. */
    private record Region(int fd, long guestAddress, long size, long offset) { }

    /** CONFIG_CHANGED events the bus sent for this device (protocol version 3), guarded by {@link #configLock}. */
    private long configChanges;
    private final Object configLock = new Object();

    ClientDevice(BusClient bus, DevId devid) {
        this.bus = bus;
        this.devid = devid;
        bus.held(this);
    }

    /** The reader thread: the bus said the device changed its config space. */
    void configChangedByBus() {
        synchronized (configLock) {
            configChanges++;
            configLock.notifyAll();
        }
    }

    /**
     * How many times the device said it changed its config space on its own (CONFIG_CHANGED; virtio's
     * configuration change notification): virtio-net asking its driver to announce itself after a restore,
     * say. Read the config (and {@link #configGeneration()}) after it. Always 0 on a connection below version 3.
     */
    public long configChanges() {
        synchronized (configLock) {
            return configChanges;
        }
    }

    /**
     * Waits until {@link #configChanges()} passes {@code seen} (a value read before), at most {@code timeout}.
     *
     * @return the count now (larger than {@code seen}), or {@code seen} if none came in time
     */
    public long awaitConfigChange(long seen, java.time.Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (configLock) {
            while (configChanges <= seen) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return seen;
                java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(configLock, left);
            }
            return configChanges;
        }
    }

    public DevId devid() { return devid; }

    // ---- status ----

    public DeviceStatus status() { return new DeviceStatus(u32(BusCall.GET_STATUS, new byte[0])); }

    /** Writes the status register; returns the status after the write. */
    public DeviceStatus writeStatus(int bits) { return new DeviceStatus(u32(BusCall.SET_STATUS, BusCall.u32(bits))); }

    /** Sets {@code bits} on top of the current status. */
    public DeviceStatus addStatus(int bits) {
        return writeStatus((status().bits() & ~DeviceStatus.NEEDS_RESET) | bits);
    }

    /** Resets the device: status 0, queues stopped, the bus drops the memory and doorbells it held. */
    public void reset() {
        writeStatus(0);
        closeQueues();
    }

    public DeviceStatus driverOk() { return addStatus(DeviceStatus.DRIVER_OK); }

    // ---- features ----

    public long offeredFeatures() { return u64(BusCall.GET_FEATURES, new byte[0]); }

    public long negotiatedFeatures() { return u64(BusCall.GET_NEGOTIATED, new byte[0]); }

    /**
     * ACKNOWLEDGE, DRIVER, acks {@code wanted & offered}, FEATURES_OK.
     *
     * @return the negotiated features
     */
    public long negotiate(long wanted) {
        addStatus(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER);
        long ack = wanted & offeredFeatures();
        call(BusCall.SET_FEATURES, BusCall.u64(ack));
        addStatus(DeviceStatus.FEATURES_OK);
        long got = negotiatedFeatures();
        synchronized (this) {
            negotiated = got;
        }
        return got;
    }

    // ---- config ----

    public byte[] readConfig(int offset, int length) { return call(BusCall.READ_CONFIG, BusCall.readConfig(offset, length)); }

    public void writeConfig(int offset, byte[] data) { call(BusCall.WRITE_CONFIG, BusCall.writeConfig(offset, data)); }

    public int configGeneration() { return u32(BusCall.CONFIG_GENERATION, new byte[0]); }

    // ---- model verbs ----

    /** The model's own verb {@code func} (sent as {@code MODEL_BASE + func}). */
    public byte[] callModel(int func, byte[] payload) {
        if (func < 0 || func > Integer.MAX_VALUE - BusCall.MODEL_BASE) throw new IllegalArgumentException("model func out of range: " + func);
        return call(BusCall.MODEL_BASE + func, payload);
    }

    /**
     * A model verb that sets the device up before DRIVER_OK (virtio-net's delivery log): made now, and made
     * again when the device is resumed on a restarted bus ({@link ResilientBus}).
     */
    public byte[] callModelOnResume(int func, byte[] payload) {
        byte[] out = callModel(func, payload);
        synchronized (this) {
            setUpCalls.add(new ModelCall(func, payload.clone()));
        }
        return out;
    }

    /** A raw DEVCALL: bus verbs below {@link BusCall#MODEL_BASE}, model verbs from it. */
    public byte[] call(int func, byte[] payload) {
        return bus.request(new Message.DevCall(devid, func, payload)).payload();
    }

    // ---- memory and queues ----

    /** Shares {@code [offset, offset+size)} of the file behind {@code fd} with the device at {@code guestAddress}. */
    public void shareMemory(int fd, long guestAddress, long size, long offset) {
        bus.request(new Message.DevShm(devid, guestAddress, size, offset), fd);
        synchronized (this) {
            regions.add(new Region(fd, guestAddress, size, offset));
        }
    }

    /** Creates a memfd of {@code size} bytes, shares it whole at {@code guestBase}, and returns it (the client owns it). */
    public DriverMemory shareMemory(String name, long size, long guestBase) {
        DriverMemory mem = DriverMemory.create(name, size, guestBase);
        try {
            shareMemory(mem.memfd().fd(), guestBase, size, 0);
            return mem;
        } catch (RuntimeException e) {
            mem.close();
            throw e;
        }
    }

    public void setQueue(QueueConfig q) {
        call(BusCall.SET_QUEUE, BusCall.setQueue(q.index(), q.size(), q.descAddr(), q.availAddr(), q.usedAddr()));
    }

    public void enableQueue(int queue, boolean enable) { call(BusCall.ENABLE_QUEUE, BusCall.enableQueue(queue, enable)); }

    /** Hands the bus a queue's doorbells (it gets duplicates; these stay the caller's). */
    public void setDoorbells(int queue, EventFd kick, EventFd call) {
        bus.request(new Message.Signal(devid, queue), kick.fd(), call.fd());
    }

    /**
     * Lays out one split ring per size in {@code memory} (queue i gets {@code sizes[i]}), tells the
     * device where, and gives each queue fresh eventfds. Call after {@link #negotiate}, before
     * {@link #driverOk()}.
     */
    public List<ClientQueue> setUpQueues(DriverMemory memory, int... sizes) {
        List<ClientQueue> made = new ArrayList<>();
        long features = negotiatedFeatures();
        synchronized (this) {
            negotiated = features;
        }
        boolean eventIdx = VirtioFeatures.EVENT_IDX.in(features);
        boolean indirect = VirtioFeatures.INDIRECT_DESC.in(features);
        for (int i = 0; i < sizes.length; i++) {
            SplitRingLayout layout = SplitRingLayout.of(sizes[i]);
            long desc = memory.allocate(layout.descTableBytes(), SplitRingLayout.DESC_ALIGN);
            long avail = memory.allocate(layout.availRingBytes(), SplitRingLayout.AVAIL_ALIGN);
            long used = memory.allocate(layout.usedRingBytes(), SplitRingLayout.USED_ALIGN);
            QueueConfig config = new QueueConfig(i, sizes[i], desc, avail, used);
            EventFd kick = EventFd.create(), call = EventFd.create();
            try {
                SplitVirtqueueDriver driver = SplitVirtqueueDriver.create(i, sizes[i], desc, avail, used,
                        memory.guestMemory(), eventIdx, indirect, false, Notifier.of(kick));
                ClientQueue q = new ClientQueue(config, kick, call, driver);
                setQueue(config);
                setDoorbells(i, kick, call);
                made.add(q);
            } catch (QueueFault | RuntimeException e) {
                kick.close();
                call.close();
                made.forEach(ClientQueue::close);
                if (e instanceof RuntimeException re) throw re;
                throw new IllegalStateException("queue " + i + " does not fit the client's own memory: " + e.getMessage(), e);
            }
        }
        synchronized (this) {
            queues.addAll(made);
        }
        return made;
    }

    /**
     * The same device, opened as {@code devidThere} on another bus ({@code there}) where it was restored
     * after a move (MOVED): the memory shared here (every DEVSHM region, by the same fds, which the caller
     * keeps open) and every queue's doorbells are handed over again, and nothing else. The features, the
     * status and the rings' positions came with the device's state: nothing is negotiated or set up again,
     * and the rings' users carry on meanwhile. The queues then belong to both handles until
     * {@link #handOver()} is called on the one left behind (or on the new one, if the move is given up).
     */
    public ClientDevice reopenOn(BusClient there, DevId devidThere) {
        List<Region> shared;
        List<ClientQueue> qs;
        synchronized (this) {
            shared = List.copyOf(regions);
            qs = List.copyOf(queues);
        }
        // One batch, one round trip: the driver waits for the device meanwhile (PROTOCOL.md, "Following a moved device").
        List<BusClient.Outgoing> batch = new ArrayList<>();
        batch.add(new BusClient.Outgoing(new Message.DevOpen(devidThere)));
        for (Region r : shared) batch.add(new BusClient.Outgoing(new Message.DevShm(devidThere, r.guestAddress(), r.size(), r.offset()), r.fd()));
        for (ClientQueue q : qs) batch.add(new BusClient.Outgoing(new Message.Signal(devidThere, q.index()), q.kickFd().fd(), q.callFd().fd()));
        there.requestAll(batch);
        ClientDevice moved = new ClientDevice(there, devidThere);
        synchronized (moved) {
            moved.regions.addAll(shared);
        }
        List<ModelCall> calls;
        long features;
        synchronized (this) {
            calls = List.copyOf(setUpCalls);
            features = negotiated;
        }
        synchronized (moved) {
            moved.queues.addAll(qs);
            moved.setUpCalls.addAll(calls);   // so the moved device can be resumed after its new bus restarts
            moved.negotiated = features;
        }
        return moved;
    }

    /**
     * The same device, taken up again on {@code there}, a connection to its bus after that bus restarted and made
     * the device afresh under the same devid: the same memory (every region, by the same fds) and doorbells, the
     * features these rings were set up under (RESUME_DRIVER: not negotiated again), each ring carrying on from
     * its used index in memory (RESUME_QUEUE), the set-up model calls again, DRIVER_OK. The rings' users carry
     * on; what they had made available and the old bus had not returned is taken again. Like
     * {@link #reopenOn}, the queues then belong to both handles until {@link #handOver()} on the old one.
     *
     * @throws BusClientException if the bus refused any step (the new handle is then closed: the device reset)
     */
    ClientDevice resumeOn(BusClient there) {
        List<Region> shared;
        List<ClientQueue> qs;
        List<ModelCall> calls;
        long features;
        synchronized (this) {
            shared = List.copyOf(regions);
            qs = List.copyOf(queues);
            calls = List.copyOf(setUpCalls);
            features = negotiated;
        }
        if (features < 0) throw new IllegalStateException(devid + " has no rings set up to resume");
        ClientDevice resumed = there.open(devid);
        try {
            for (Region r : shared) resumed.shareMemory(r.fd(), r.guestAddress(), r.size(), r.offset());
            resumed.call(BusCall.RESUME_DRIVER, BusCall.u64(features));
            for (ClientQueue q : qs) {
                QueueConfig c = q.config();
                resumed.call(BusCall.RESUME_QUEUE, BusCall.setQueue(c.index(), c.size(), c.descAddr(), c.availAddr(), c.usedAddr()));
            }
            for (ModelCall c : calls) resumed.callModel(c.func(), c.payload());
            for (ClientQueue q : qs) resumed.setDoorbells(q.index(), q.kickFd(), q.callFd());
            resumed.driverOk();
        } catch (RuntimeException e) {
            resumed.handOver();   // the queues and memory stay this handle's
            try {
                there.request(new Message.DevClose(devid));
            } catch (RuntimeException ignored) {
                // the connection is going anyway
            }
            throw e;
        }
        synchronized (resumed) {
            resumed.queues.addAll(qs);
            resumed.setUpCalls.addAll(calls);
            resumed.negotiated = features;
        }
        for (ClientQueue q : qs) q.kickFd().signal();   // whatever was made available meanwhile is there to take
        return resumed;
    }

    /**
     * Forgets this handle's queues and memory without closing them (another handle of the device owns
     * them now, after a move) and marks it closed: nothing is sent to its bus.
     */
    public synchronized void handOver() {
        bus.released(this);
        queues.clear();
        regions.clear();
        closed = true;
    }

    /** The queues set up on this device (after a move, the same ones). */
    public synchronized List<ClientQueue> queues() {
        return List.copyOf(queues);
    }

    private synchronized void closeQueues() {
        queues.forEach(ClientQueue::close);
        queues.clear();
    }

    /** DEVCLOSE: the bus resets the device and frees it. Closes this side's doorbells too. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        bus.released(this);
        try {
            if (bus.isConnected()) bus.request(new Message.DevClose(devid));
        } finally {
            closeQueues();
        }
    }

    private byte[] call(BusCall bus, byte[] in) {
        return call(bus.func, in);
    }

    private int u32(BusCall func, byte[] in) {
        try {
            PayloadReader r = new PayloadReader(func + " reply", call(func, in));
            int v = r.u32("value");
            r.end();
            return v;
        } catch (ProtocolException e) {
            throw new BusClientException(e.code(), e.getMessage(), false);
        }
    }

    private long u64(BusCall func, byte[] in) {
        try {
            PayloadReader r = new PayloadReader(func + " reply", call(func, in));
            long v = r.u64("value");
            r.end();
            return v;
        } catch (ProtocolException e) {
            throw new BusClientException(e.code(), e.getMessage(), false);
        }
    }

    @Override
    public String toString() { return "ClientDevice[" + devid + "]"; }
}
