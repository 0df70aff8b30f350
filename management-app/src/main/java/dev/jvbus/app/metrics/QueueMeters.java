package dev.jvbus.app.metrics;

import dev.jvbus.core.bus.Device;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.RingPosition;
import dev.jvbus.core.spi.QueueSpec;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.function.ToIntFunction;

/**
 * The meters of one device queue, over the {@link QueueCounters} its data path bumps as plain fields.
 * Every meter reads those fields when Prometheus scrapes ({@code FunctionCounter}, {@code Gauge}); none
 * is ever called from the data path. Tags: container, devid, type, queue (the model's name for it:
 * rx0, tx0, ctrl, evq ...) and direction (rx: towards the driver, tx: from it, control: anything else),
 * all bounded by the topology; never a MAC.
 *
 * <p>A required queue's meters exist from hotplug; an optional queue's (rx1, tx1, ... ctrl) from the first time a
 * driver starts it ({@link #used}), see {@link BusMeters}. Fault counters are registered per reason the first time that reason occurs on the queue (faults are
 * rare, and 21 reasons on every queue would be most of the series); everything else from the start, at 0.
 */
final class QueueMeters {
    static final String BUFFERS = "jvbus.queue.buffers";
    static final String BYTES = "jvbus.queue.bytes";
    static final String KICKS = "jvbus.queue.kicks";
    static final String LATE_WAKEUPS = "jvbus.queue.late.wakeups";
    static final String NOTIFICATIONS = "jvbus.queue.notifications";
    static final String LINES_EVICTED = "jvbus.queue.lines.evicted";
    static final String FAULTS = "jvbus.queue.faults";
    static final String AVAILABLE = "jvbus.queue.available";
    static final String IN_FLIGHT = "jvbus.queue.in.flight";
    static final String SIZE = "jvbus.queue.size";

    private final MeterRegistry registry;
    private final QueueCounters counters;
    private final Tags tags;
    private final List<Meter> meters = new ArrayList<>();
    private final EnumSet<QueueFault.Reason> faultsRegistered = EnumSet.noneOf(QueueFault.Reason.class);

    QueueMeters(MeterRegistry registry, Device device, int index) {
        this.registry = registry;
        this.counters = device.queueCounters(index);
        QueueSpec spec = device.queues().queue(index);   // the device's layout: with one pair, index 2 is ctrl
        this.tags = Tags.of("container", device.container(), "devid", Long.toString(device.devid().unsigned()),
                "type", device.type(), "queue", spec.name(), "direction", direction(spec.name()));
        QueueCounters c = counters;
        counter(BUFFERS, "Buffers the device returned to the driver (used), since hotplug", null, c, QueueCounters::buffers);
        counter(BYTES, "Bytes the returned buffers carried, since hotplug", "bytes", c, QueueCounters::bytes);
        counter(KICKS, "Doorbells from the driver the device's worker took, since hotplug", null, c, QueueCounters::kicks);
        counter(LATE_WAKEUPS, "Wake-ups of the device's worker that found the queue with work its driver had not rung for"
                + " (slept with work pending); one is a race, a count that grows is a stall", null, c, QueueCounters::lateWakeups);
        counter(LINES_EVICTED, "Cache lines of the ring and its buffers the device evicted after reading them, so that the driver's next write"
                + " to them does not wait for the device's core; taken only where measured to pay (virtio-net tx)", null, c, QueueCounters::linesEvicted);
        meters.add(FunctionCounter.builder(NOTIFICATIONS, c, QueueCounters::notificationsSent).tags(tags).tag("outcome", "sent")
                .description("Used-buffer notifications: sent to the driver, or suppressed because the driver asked not to get them")
                .register(registry));
        meters.add(FunctionCounter.builder(NOTIFICATIONS, c, QueueCounters::notificationsSuppressed).tags(tags).tag("outcome", "suppressed")
                .description("Used-buffer notifications: sent to the driver, or suppressed because the driver asked not to get them")
                .register(registry));
        gauge(AVAILABLE, "Buffers the driver made available that the device has not taken yet (the ring's fill); 0 while the queue is stopped",
                "buffers", RingPosition::available);
        gauge(IN_FLIGHT, "Buffers the device took and has not returned yet; 0 while the queue is stopped", "buffers", RingPosition::inFlight);
        gauge(SIZE, "Entries in the ring the driver set up; 0 while the queue is stopped", "entries", RingPosition::size);
        faultsSeen();
    }

    /**
     * Whether a driver has started the queue, now or before: a ring runs it, or it counted something. An optional
     * queue gets its meters from then on ({@link BusMeters#reconcile}).
     */
    static boolean used(QueueCounters c) {
        return c.ring() != null || c.buffers() != 0 || c.kicks() != 0 || c.lateWakeups() != 0 || c.notificationsSent() != 0 || c.notificationsSuppressed() != 0
                || c.faults() != 0;
    }

    /** rx: the device fills buffers for the driver; tx: the driver's buffers for the device; control: anything else. */
    static String direction(String queueName) {
        String n = queueName.toLowerCase(Locale.ROOT);
        return n.startsWith("rx") ? "rx" : n.startsWith("tx") ? "tx" : "control";
    }

    private void counter(String name, String help, String unit, QueueCounters c, java.util.function.ToDoubleFunction<QueueCounters> f) {
        meters.add(FunctionCounter.builder(name, c, f).tags(tags).baseUnit(unit).description(help).register(registry));
    }

    private void gauge(String name, String help, String unit, ToIntFunction<RingPosition> f) {
        meters.add(Gauge.builder(name, counters, c -> position(c, f)).tags(tags).baseUnit(unit).description(help)
                .strongReference(true).register(registry));
    }

    /** What the running ring says, or 0 when none runs (or its driver's memory went away since we looked). */
    private static double position(QueueCounters c, ToIntFunction<RingPosition> f) {
        RingPosition ring = c.ring();
        if (ring == null) return 0;
        try {
            return f.applyAsInt(ring);
        } catch (IllegalStateException | WrongThreadException unmapped) {
            return 0;
        }
    }

    /** Registers a fault counter for each reason that occurred since the last look. Called before a scrape. */
    void faultsSeen() {
        for (QueueFault.Reason r : QueueFault.Reason.values()) {
            if (faultsRegistered.contains(r) || counters.faults(r) == 0) continue;
            faultsRegistered.add(r);
            meters.add(FunctionCounter.builder(FAULTS, counters, c -> c.faults(r)).tags(tags).tag("reason", r.name().toLowerCase(Locale.ROOT))
                    .description("Ring faults (the driver broke a ring rule; the device went NEEDS_RESET), by reason").register(registry));
        }
    }

    void remove() {
        meters.forEach(registry::remove);
        meters.clear();
    }
}
