package dev.jvbus.app.service;

import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.core.bus.Bus;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.stereotype.Component;

/**
 * The one door for every state-changing operation of the management plane. Changes pass one at a
 * time, so a service's checks (name free, container present, device not busy) still hold when it
 * acts; what a change reports is published as a {@link BusEvent} after it succeeded. The topology
 * store records changes here too (it is the one place that sees them all).
 */
@Component
public class BusChanges {
    private final Bus bus;
    private final ApplicationEventPublisher events;
    private final TopologyRecorder recorder;

    BusChanges(Bus bus, ApplicationEventPublisher events, TopologyRecorder recorder) {
        this.bus = bus;
        this.events = events;
        this.recorder = recorder;
    }

    /** What a change returns: its result and the event that tells others about it. */
    public record Outcome<T>(T result, BusEvent event) { }

    /** Runs {@code change} alone, then publishes its event. A refused change publishes nothing. */
    public <T> T apply(Supplier<Outcome<T>> change) {
        Outcome<T> done;
        synchronized (this) {
            try {
                done = change.get();
            } finally {
                // What the bus holds now, whether the change went through or stopped half-way
                // (a forced delete that unplugged some devices, then failed): the store follows the bus.
                recorder.record(bus);
            }
        }
        if (done.event() != null) events.publishEvent(done.event());
        return done.result();
    }

    /**
     * As {@link #apply}, but the store is not written now: the caller writes it ({@link #record}) before it
     * reports success. For a migration's restore, whose device waits paused for its driver: the store's
     * forced write then happens once the device runs, outside the time its guest waits. Until then a crash
     * loses the restored device, which nothing has been told exists (its source still has it).
     */
    public <T> T applyUnrecorded(Supplier<Outcome<T>> change) {
        Outcome<T> done;
        synchronized (this) {
            done = change.get();
        }
        if (done.event() != null) events.publishEvent(done.event());
        return done.result();
    }

    /** Writes what the bus holds now to the store (after {@link #applyUnrecorded}). */
    public void record() {
        synchronized (this) {
            recorder.record(bus);
        }
    }

    /** Reports how long a change took (hotplug latency, for metrics), as a {@link ChangeTook} event. */
    public void took(String change, long nanos) {
        events.publishEvent(new ChangeTook(change, nanos));
    }

    /**
     * Devices held by a long operation (snapshot, restore's resume, migrate), by container and devid,
     * with the operation that holds each. While one is held, nothing else may unplug, snapshot or
     * migrate it: a hotplug or unplug in the middle of a migration is exactly what must not happen.
     */
    private final Map<String, String> held = new HashMap<>();   // "container/devid" -> operation; guarded by this

    /** A device held by an operation; closing lets go of it (once). */
    public final class Hold implements AutoCloseable {
        private final String key;
        private boolean released;

        private Hold(String key) {
            this.key = key;
        }

        @Override
        public void close() {
            synchronized (BusChanges.this) {
                if (released) return;
                released = true;
                held.remove(key);
            }
        }
    }

    /**
     * Holds a device for {@code operation}, refusing (DEVICE_BUSY, naming the holder) if another
     * operation holds it. Call it inside {@link #apply}, after the checks, so they still hold.
     */
    public synchronized Hold hold(String container, long devid, String operation) {
        requireIdle(container, devid);
        String key = container + "/" + devid;
        held.put(key, operation);
        return new Hold(key);
    }

    /** Refuses (DEVICE_BUSY) a change to a device an operation holds. */
    public synchronized void requireIdle(String container, long devid) {
        String by = held.get(container + "/" + devid);
        if (by != null)
            throw new OperationRefused(ProblemType.DEVICE_BUSY, "device " + devid + " in container '" + container
                    + "' is busy in operation " + by + "; wait for it to end or cancel it (/api/v1/operations/" + by + ")",
                    Map.of("operation", by));
    }

    /** Refuses (DEVICE_BUSY) a change to a container any of whose devices an operation holds. */
    public synchronized void requireIdle(String container) {
        for (var e : held.entrySet())
            if (e.getKey().startsWith(container + "/"))
                throw new OperationRefused(ProblemType.DEVICE_BUSY, "container '" + container + "' has device "
                        + e.getKey().substring(container.length() + 1) + " busy in operation " + e.getValue()
                        + "; wait for it to end or cancel it", Map.of("operation", e.getValue()));
    }

    /** Reads happen without the door; the bus's own locks keep each read consistent. */
    public Bus bus() {
        return bus;
    }
}
