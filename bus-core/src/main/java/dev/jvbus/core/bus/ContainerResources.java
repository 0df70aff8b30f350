package dev.jvbus.core.bus;

import dev.jvbus.core.spi.ContainerResource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The resources of one container (see {@link ContainerResource}): made on first use, one per key, and
 * closed in reverse order of creation when the container is destroyed. Lookups are rare (a device's
 * start, an operator's call), never per frame, so one lock is enough.
 */
final class ContainerResources {
    private static final Logger LOG = Logger.getLogger(ContainerResources.class.getName());

    private final String container;
    private final Exposures exposures;
    private final Map<ContainerResource<?>, Object> byKey = new LinkedHashMap<>();
    private boolean closed;

    /** A device alone: its own exposure ids. */
    ContainerResources(String container) {
        this(container, new java.util.concurrent.atomic.AtomicLong()::incrementAndGet);
    }

    /** A bus's container: exposure ids from the bus, so they are unique within it. */
    ContainerResources(String container, java.util.function.LongSupplier exposureIds) {
        this.container = container;
        this.exposures = new Exposures(container, exposureIds);
    }

    /** The container's exposures: kept apart from keyed resources, since bus-core itself owns them. */
    Exposures exposures() {
        return exposures;
    }

    synchronized <T> T get(ContainerResource<T> key) {
        Object r = byKey.get(key);
        if (r == null) {
            if (closed) throw new BusException("container '" + container + "' was destroyed; its " + key.name() + " are gone");
            r = key.create(container);
            byKey.put(key, r);
        }
        return key.cast(r);
    }

    /**
     * Closes the exposures first (nobody can reach the container any more), then every resource that is
     * AutoCloseable, the newest first; one failing does not stop the rest.
     */
    void close() {
        exposures.closeAll();
        List<Object> all;
        synchronized (this) {
            if (closed) return;
            closed = true;
            all = new ArrayList<>(byKey.values());
            byKey.clear();
        }
        Collections.reverse(all);
        for (Object r : all) {
            if (!(r instanceof AutoCloseable c)) continue;
            try {
                c.close();
            } catch (Exception e) {
                LOG.log(Level.WARNING, "container '" + container + "': closing " + r + " failed", e);
            }
        }
    }
}
