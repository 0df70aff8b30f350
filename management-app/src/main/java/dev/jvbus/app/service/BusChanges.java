package dev.jvbus.app.service;

import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.core.bus.Bus;
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

    /** Reads happen without the door; the bus's own locks keep each read consistent. */
    public Bus bus() {
        return bus;
    }
}
