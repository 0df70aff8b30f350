package dev.jvbus.core.bus;

import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import java.util.Optional;

/**
 * A driver's hold on one device: the only way to drive it (status, features, config, DEVCALL).
 * Closing it (or the driver going away) resets the device and frees it for the next driver.
 */
public final class Attachment implements AutoCloseable {
    private final Device device;
    private final String holder;
    private final DeviceObserver observer;
    private volatile boolean closed;

    Attachment(Device device, String holder, DeviceObserver observer) {
        this.device = device;
        this.holder = holder;
        this.observer = observer;
    }

    public Device device() { return device; }

    public DevId devid() { return device.devid(); }

    public String holder() { return holder; }

    DeviceObserver observer() { return observer; }

    public boolean isClosed() { return closed; }

    public DeviceStatus status() { return device.status(); }

    /** The driver writes the status register (0 resets). */
    public void writeStatus(int value) { device.writeStatus(this, value); }

    /** Sets the given status bits on top of the current ones. */
    public void addStatus(int bits) { writeStatus((device.status().bits() & ~DeviceStatus.NEEDS_RESET) | bits); }

    public void reset() { writeStatus(0); }

    public long offeredFeatures() { return device.offeredFeatures(this); }

    public void ackFeatures(long bits) { device.ackFeatures(this, bits, true); }

    /**
     * A front-end that serves part of the device itself (vhost-user: QEMU keeps a net device's control queue)
     * acks the features it has this device serve, a part of its driver's set: inside the offer as always, but
     * the requirements among features are the front-end's to check, since it may keep a required feature
     * to itself (see {@link dev.jvbus.core.feature.FeatureNegotiation#ackServed}).
     */
    public void ackServedFeatures(long bits) { device.ackFeatures(this, bits, false); }

    /**
     * A driver that outlived its bus takes up this fresh device (status 0) with the features it had: ACKNOWLEDGE,
     * DRIVER, exactly {@code negotiated}, FEATURES_OK, in one step. The set must lie inside what the device offers,
     * or what its model still honours in a saved driver ({@link dev.jvbus.core.spi.DeviceModel#featuresHonouredOnRestore}),
     * as a restore's must: the bus that died may have negotiated it under an older offer.
     *
     * @throws FeatureNegotiationException naming what does not fit (the device stays at reset)
     */
    public void resumeDriver(long negotiated) { device.resumeDriver(this, negotiated); }

    public long negotiatedFeatures() { return device.features().negotiated(); }

    public byte[] readConfig(int offset, int length) { return device.readConfig(this, offset, length); }

    public int configGeneration() { return device.configGeneration(this); }

    public void writeConfig(int offset, byte[] data) { device.writeConfig(this, offset, data); }

    /** A model-specific verb (vbus DEVCALL). */
    public byte[] call(int func, byte[] payload) throws DeviceFault { return device.call(this, func, payload); }

    /**
     * The driver's front-end asks the device to announce, on the driver's behalf, that the driver with
     * link-layer address {@code address} is reachable through it (see {@link DeviceFunction#announce}).
     *
     * @throws DeviceFault if the model refuses it (a bad address, nothing to announce)
     * @throws DeviceException if the features are not negotiated yet
     */
    public void announce(byte[] address) throws DeviceFault { device.announce(this, address); }

    /** The driver shares its memory (the connector maps it and keeps the mappings alive until reset). */
    public void setMemory(GuestMemory memory) { device.setMemory(this, memory); }

    public GuestMemory memory() { return device.memory(this); }

    /** The driver places a queue (before DRIVER_OK). The queue is enabled unless {@link #enableQueue} says otherwise. */
    public void setQueue(QueueConfig queue) { device.setQueue(this, queue, null); }

    /**
     * Places a queue that is already in use (vhost-user SET_VRING_BASE, a reconnecting front-end):
     * the model rebuilds it from {@code resume} through the ring's checked restore.
     */
    public void setQueue(QueueConfig queue, QueueState resume) { device.setQueue(this, queue, resume); }

    /**
     * The record of queue {@code queue}'s heads in flight that its ring keeps from its next start on
     * (vhost-user INFLIGHT_SHMFD; null: none). Set before the queue is placed or started.
     */
    public void setInflightLog(int queue, dev.jvbus.core.ring.virtio.SplitInflightLog log) { device.setInflightLog(this, queue, log); }

    /** The queue's doorbells: kick (driver to device) and call (device to driver). */
    public void setDoorbells(int queue, EventFd kick, Notifier call) { device.setDoorbells(this, queue, kick, call); }

    public void enableQueue(int queue, boolean enable) { device.enableQueue(this, queue, enable); }

    /**
     * Marks a queue started-but-disabled (false) or enabled (true), before or while it runs: the
     * vhost-user ring states. Unlike {@link #enableQueue}, an inactive queue is still bound and processed.
     */
    public void setQueueActive(int queue, boolean active) { device.setQueueActive(this, queue, active); }

    /**
     * Stops one running queue while the device is live; the others keep running (virtio 1.2 queue
     * reset, vhost-user GET_VRING_BASE). See {@link Device} for models that cannot stop one queue alone.
     *
     * @return where the queue stopped (next avail, next used, in-flight heads), or empty if it did not run
     */
    public Optional<QueueState> stopQueue(int queue) { return device.stopQueue(this, queue); }

    /**
     * Starts one queue while the device is live and the others run (vhost-user SET_VRING_KICK on a
     * stopped ring): placed at {@code config}, with its doorbells, carrying on from {@code resume}
     * (null: from zero), checked like {@link #setQueue(QueueConfig, QueueState)}.
     */
    public void startQueue(QueueConfig config, QueueState resume, EventFd kick, Notifier call) {
        device.startQueue(this, config, resume, kick, call);
    }

    /**
     * Re-points a queue's call doorbell (vhost-user SET_VRING_CALL), in place while it runs: no stop,
     * no lost position. The caller may close the old doorbell once this returns.
     */
    public void replaceCall(int queue, Notifier call) { device.replaceCall(this, queue, call); }

    /** Whether the queue runs now. */
    public boolean isQueueRunning(int queue) { return device.isQueueRunning(queue); }

    /** The model's function, for connectors that set up queues through a model-specific interface. */
    public DeviceFunction function() { return device.function(this); }

    void markClosed() { closed = true; }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        device.detach(this);
    }
}
