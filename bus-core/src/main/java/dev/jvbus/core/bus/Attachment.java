package dev.jvbus.core.bus;

import dev.jvbus.core.model.DeviceFault;
import dev.jvbus.core.model.DeviceFunction;
import dev.jvbus.core.model.QueueConfig;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.signal.Notifier;
import dev.jvbus.core.sys.EventFd;

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

    public void ackFeatures(long bits) { device.ackFeatures(this, bits); }

    public long negotiatedFeatures() { return device.features().negotiated(); }

    public byte[] readConfig(int offset, int length) { return device.readConfig(this, offset, length); }

    public int configGeneration() { return device.configGeneration(this); }

    public void writeConfig(int offset, byte[] data) { device.writeConfig(this, offset, data); }

    /** A model-specific verb (vbus DEVCALL). */
    public byte[] call(int func, byte[] payload) throws DeviceFault { return device.call(this, func, payload); }

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

    /** The queue's doorbells: kick (driver to device) and call (device to driver). */
    public void setDoorbells(int queue, EventFd kick, Notifier call) { device.setDoorbells(this, queue, kick, call); }

    public void enableQueue(int queue, boolean enable) { device.enableQueue(this, queue, enable); }

    /**
     * Marks a queue started-but-disabled (false) or enabled (true), before or while it runs: the
     * vhost-user ring states. Unlike {@link #enableQueue}, an inactive queue is still bound and processed.
     */
    public void setQueueActive(int queue, boolean active) { device.setQueueActive(this, queue, active); }

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
