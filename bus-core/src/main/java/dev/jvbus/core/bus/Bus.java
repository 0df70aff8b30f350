package dev.jvbus.core.bus;

import dev.jvbus.core.spi.DeviceModels;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * The bus: the device models it knows and the containers it holds, by name. It offers no way to
 * reach a device except through its container, so isolation is a property of the API.
 */
public final class Bus implements AutoCloseable {
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}");

    private final DeviceModels models;
    private final Map<String, Container> containers = new TreeMap<>();
    /** Exposure ids count up per bus, so an id names one exposure for the bus's whole life. */
    private final AtomicLong exposureIds = new AtomicLong();
    private boolean closed;   // guarded by this

    public Bus(DeviceModels models) {
        this.models = Objects.requireNonNull(models);
    }

    /** A bus with every device model found on the class path. */
    public static Bus withDiscoveredModels() {
        return new Bus(DeviceModels.discover());
    }

    public DeviceModels models() {
        return models;
    }

    /**
     * Creates an empty container.
     *
     * @throws BusException if the name is taken or not a valid name (letters, digits, '.', '_', '-'; up to 63)
     */
    public synchronized Container createContainer(String name) {
        if (name == null || !NAME.matcher(name).matches())
            throw new BusException("invalid container name '" + name + "': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
        if (closed) throw new BusException("the bus is closed");
        if (containers.containsKey(name)) throw new BusException("container '" + name + "' already exists");
        Container c = new Container(name, models, exposureIds::incrementAndGet);
        containers.put(name, c);
        return c;
    }

    public synchronized Optional<Container> container(String name) {
        return Optional.ofNullable(containers.get(name));
    }

    /** The named container, or a clear error. */
    public Container requireContainer(String name) {
        return container(name).orElseThrow(() -> new BusException("no such container '" + name + "'"));
    }

    public synchronized List<Container> containers() {
        return List.copyOf(containers.values());
    }

    /** Every live exposure on this bus (of every container and its devices), by container, then oldest first. */
    public List<Exposure> exposures() {
        return containers().stream().flatMap(c -> c.exposures().list().stream()).toList();
    }

    /** The number in the next exposure id this bus hands out (the topology store keeps it across restarts). */
    public long nextExposureId() {
        return exposureIds.get() + 1;
    }

    /**
     * Exposure ids numbered below {@code next} are not handed out (again): after a restart, ids used
     * before stay unused, and an exposure re-opened from the store gets back its id when the counter is
     * set just below it first. Never moves the counter back.
     */
    public void skipExposureIdsBelow(long next) {
        exposureIds.accumulateAndGet(next - 1, Math::max);
    }

    /** The live exposure with this id, wherever it is on this bus. */
    public Optional<Exposure> exposure(String id) {
        return containers().stream().flatMap(c -> c.exposures().find(id).stream()).findFirst();
    }

    /**
     * Shuts the bus down: every container is destroyed, newest name last to first, which closes every
     * exposure (peers see their connections end, sockets are removed) and resets every device. No
     * container can be created afterwards. Idempotent.
     */
    @Override
    public void close() {
        List<Container> all;
        synchronized (this) {
            closed = true;
            all = new java.util.ArrayList<>(containers.values());
        }
        java.util.Collections.reverse(all);
        for (Container c : all) {
            try {
                destroyContainer(c.name());
            } catch (BusException gone) {
                // destroyed concurrently: fine
            }
        }
    }

    /** Destroys a container: every device is removed in order (reset, driver told), then the name is free. */
    public void destroyContainer(String name) {
        Container c;
        synchronized (this) {
            c = containers.remove(name);
        }
        if (c == null) throw new BusException("no such container '" + name + "'");
        c.destroy();
    }
}
