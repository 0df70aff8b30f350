package dev.jvbus.core.bus;

import dev.jvbus.core.spi.ContainerResource;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.state.DeviceState;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A namespace of devices addressed by 32-bit devids, and the unit of isolation: a connector
 * session is bound to one container and can only ever name devids through it. No API on the bus
 * looks up a device across containers.
 *
 * <p>Devids are allocated from 1 upward and never reused while the container lives, so a stale
 * devid held by a guest can never reach a newer device.
 *
 * <p>A container holds at most {@link #deviceLimit()} devices (the operator's setting, default
 * {@value #DEFAULT_DEVICE_LIMIT}): each device costs threads and memory once driven, and every
 * session of the container is told of each one.
 */
public final class Container {
    private static final Logger LOG = Logger.getLogger(Container.class.getName());
    /**
     * Devices per container unless the operator says otherwise: far more than the devices one guest
     * or tenant uses (a VM with more than a few dozen NICs is rare), and few enough that one
     * container's devices, their queue threads and the hotplug events every session receives stay
     * small next to the bus. (An shm ENUMERATE reply lists a few thousand devices in one frame.)
     */
    public static final int DEFAULT_DEVICE_LIMIT = 256;

    private final String name;
    private final DeviceModels models;
    private final Map<DevId, Device> devices = new TreeMap<>();
    private final List<Consumer<ContainerEvent>> listeners = new CopyOnWriteArrayList<>();
    private long nextDevid = 1;           // allocation cursor; long so exhaustion is detectable
    private final java.util.Set<DevId> everUsed = new java.util.HashSet<>(); // never reused while the container lives
    private final java.util.Set<DevId> movedAway = new java.util.HashSet<>(); // left by a migration: may come back by restore
    private boolean destroyed;
    private final ContainerResources resources;
    private int deviceLimit = DEFAULT_DEVICE_LIMIT;   // guarded by this

    Container(String name, DeviceModels models, java.util.function.LongSupplier exposureIds) {
        this.name = Objects.requireNonNull(name);
        this.models = Objects.requireNonNull(models);
        this.resources = new ContainerResources(name, exposureIds);
    }

    public String name() {
        return name;
    }

    /**
     * This container's resource under {@code key}, made on first use (see {@link ContainerResource}): the
     * same instance its devices reach through their context, e.g. the networks an operator creates,
     * lists and deletes. Nothing in it is shared with another container or another bus.
     *
     * @throws BusException if the container was destroyed
     */
    public <T> T resource(ContainerResource<T> key) {
        return resources.get(key);
    }

    /**
     * This container's exposures: where connectors make it and its devices reachable, and where the
     * operator lists and closes them. They close when their device is removed or this container is destroyed.
     */
    public Exposures exposures() {
        return resources.exposures();
    }

    /** The most devices this container may hold. */
    public synchronized int deviceLimit() {
        return deviceLimit;
    }

    /**
     * Sets the most devices this container may hold (the operator's setting). Devices already there
     * stay even if there are more; only new ones are refused.
     */
    public synchronized void limitDevices(int max) {
        if (max < 1) throw new IllegalArgumentException("a container's device limit must be at least 1: " + max);
        deviceLimit = max;
    }

    /** Adds a device of a known model type, offering everything the model can. */
    public Device addDevice(String type) {
        return addDevice(type, -1L);
    }

    /**
     * Adds a device with an operator's feature limit mask. Emits {@link ContainerEvent.DeviceAdded}.
     *
     * @throws BusException if the type is unknown, the container is gone or devids are exhausted
     */
    public Device addDevice(String type, long featureLimit) {
        return addDevice(type, featureLimit, Map.of());
    }

    /**
     * Adds a device with a feature limit and model parameters (see each model's documentation).
     * A model that refuses its parameters throws IllegalArgumentException, reported as a BusException.
     */
    public Device addDevice(String type, long featureLimit, Map<String, String> params) {
        return add(null, type, featureLimit, params);
    }

    /**
     * Adds a fresh device under a devid an operator's records name: the management app recreating
     * its stored topology after a restart, so guests and scripts find the devids they knew. The
     * devid must never have been used in this container.
     */
    public Device addDevice(DevId devid, String type, long featureLimit, Map<String, String> params) {
        return add(Objects.requireNonNull(devid), type, featureLimit, params);
    }

    private Device add(DevId wanted, String type, long featureLimit, Map<String, String> params) {
        DeviceModel model = models.model(type).orElseThrow(() ->
                new BusException("unknown device type '" + type + "'; this bus has " + models.types()));
        Device d;
        synchronized (this) {
            checkLive();
            checkRoom();
            DevId id = wanted == null ? allocate() : claim(wanted);
            d = newDevice(id, model, featureLimit, params);
            devices.put(id, d);
        }
        emit(new ContainerEvent.DeviceAdded(name, d.devid(), type));
        return d;
    }

    /** The devid the next {@link #addDevice(String)} would try first: every devid below it was used or skipped. */
    public synchronized long nextDevid() {
        return nextDevid;
    }

    /**
     * Never allocates a devid below {@code next} (an operator's records say those were used, before a
     * restart of the app): a devid, once used in a container, is not handed out again. Only moves forward.
     */
    public synchronized void skipDevidsBelow(long next) {
        if (next > nextDevid) nextDevid = Math.min(next, 0x1_0000_0000L);
    }

    private DevId claim(DevId id) {
        if (id.value() == 0) throw new BusException("devid 0 is never allocated");
        if (!everUsed.add(id)) throw new BusException("devid " + id + " is or was in use in container '" + name + "'");
        return id;
    }

    /**
     * Recreates a saved device under its saved devid, with no operator feature limit on this bus
     * (the model's every bit may be offered): {@link #restoreDevice(DeviceState, long)} with -1.
     */
    public Device restoreDevice(DeviceState state) {
        return restoreDevice(state, -1L);
    }

    /**
     * Recreates a saved device under its saved devid (a migrated guest knows its devices by devid).
     * The devid must never have been used in this container. {@code featureLimit} is this bus's
     * operator limit for the device, as for {@link #addDevice(String, long, Map)}; it stays in force,
     * whatever limit the file carries, and a state that relies on features outside it is refused by name.
     */
    public Device restoreDevice(DeviceState state, long featureLimit) {
        DeviceModel model = models.model(state.type()).orElseThrow(() ->
                new BusException("cannot restore: unknown device type '" + state.type() + "'; this bus has " + models.types()));
        DevId id = new DevId(state.devid());
        Device d;
        synchronized (this) {
            checkLive();
            checkRoom();
            if (id.value() == 0) throw new BusException("cannot restore: devid 0 is never allocated");
            if (everUsed.contains(id) && !movedAway.contains(id))
                throw new BusException("cannot restore: devid " + id + " is or was in use in container '" + name + "'");
            d = newDevice(id, model, featureLimit, state.params());
            try {
                d.restore(state);
            } catch (RuntimeException e) {
                // The device was made (a net device's port is on its switch already): a refused state leaves nothing.
                d.unplug();
                throw e;
            }
            everUsed.add(id);
            movedAway.remove(id);
            devices.put(id, d);
        }
        emit(new ContainerEvent.DeviceAdded(name, id, model.type()));
        return d;
    }

    private DevId allocate() {
        while (nextDevid <= 0xFFFF_FFFFL) {
            DevId id = new DevId((int) nextDevid++);
            if (everUsed.add(id)) return id;   // skip devids a restore already claimed
        }
        throw new BusException("container '" + name + "' has used all 2^32-1 devids");
    }

    private Device newDevice(DevId id, DeviceModel model, long featureLimit, Map<String, String> params) {
        try {
            return Device.create(id, name, model, featureLimit, params, this::announceNeedsReset, resources);
        } catch (IllegalArgumentException e) {
            // Nobody ever saw this devid, so handing it out again breaks no promise.
            everUsed.remove(id);
            if (id.unsigned() == nextDevid - 1) nextDevid--;
            throw new BusException("cannot create " + model.type() + " device: " + e.getMessage());
        }
    }

    private void announceNeedsReset(Device dev) {
        emit(new ContainerEvent.DeviceNeedsReset(name, dev.devid(), dev.needsResetReason().orElse("unknown")));
    }

    /** The device with this devid in this container. */
    public synchronized Device device(DevId devid) {
        Device d = devices.get(devid);
        if (d == null) throw new NoSuchDeviceException(name, devid);
        return d;
    }

    public synchronized boolean contains(DevId devid) {
        return devices.containsKey(devid);
    }

    /** Devices in devid order. */
    public synchronized List<Device> devices() {
        return List.copyOf(devices.values());
    }

    /**
     * Unplugs a device: it is reset (queues stopped), its driver told, then the removal is announced.
     * Emits {@link ContainerEvent.DeviceRemoved}.
     */
    public Device removeDevice(DevId devid) {
        Device d;
        synchronized (this) {
            d = devices.remove(devid);
            if (d == null) throw new NoSuchDeviceException(name, devid);
        }
        d.unplug();
        // After the unplug, so an exposure opened meanwhile sees the device removed and closes itself.
        resources.exposures().deviceRemoved(devid);
        emit(new ContainerEvent.DeviceRemoved(name, devid, d.type()));
        return d;
    }

    /**
     * Unplugs a device that moved to another bus (a migration released it here), as {@link #removeDevice}
     * does, and keeps its devid for it: no hotplug ever gets that devid, but the same device may come back
     * under it by {@link #restoreDevice} (moved back), since its guest knows it by that devid.
     */
    public Device moveOut(DevId devid) {
        Device d = removeDevice(devid);
        synchronized (this) {
            movedAway.add(devid);
        }
        return d;
    }

    /** Listens for this container's events. Listeners run on the thread that caused the event. */
    public Subscription subscribe(Consumer<ContainerEvent> listener) {
        listeners.add(Objects.requireNonNull(listener));
        return () -> listeners.remove(listener);
    }

    synchronized boolean isDestroyed() {
        return destroyed;
    }

    /** Removes every device (orderly), then announces the container's end. */
    void destroy() {
        List<DevId> ids;
        synchronized (this) {
            if (destroyed) return;
            ids = new ArrayList<>(devices.keySet());
        }
        Collections.reverse(ids);
        for (DevId id : ids) {
            try {
                removeDevice(id);
            } catch (NoSuchDeviceException raced) {
                // removed concurrently: fine
            }
        }
        synchronized (this) {
            destroyed = true;
        }
        resources.close();   // after the devices: they let go of what they held in it first
        emit(new ContainerEvent.ContainerDestroyed(name));
        listeners.clear();
    }

    private void checkLive() {
        if (destroyed) throw new BusException("container '" + name + "' was destroyed");
    }

    private void checkRoom() {
        if (devices.size() >= deviceLimit)
            throw new BusException("container '" + name + "' already holds " + devices.size()
                    + " devices (limit: devices per container = " + deviceLimit + "; the operator can raise it with limitDevices)");
    }

    private void emit(ContainerEvent e) {
        for (Consumer<ContainerEvent> l : listeners) {
            try {
                l.accept(e);
            } catch (RuntimeException ex) {
                // One broken listener (a connector whose peer vanished) must not stop the others.
                LOG.log(Level.WARNING, "container '" + name + "': event listener failed on " + e, ex);
            }
        }
    }

    @Override
    public String toString() {
        return "Container[" + name + "]";
    }
}
