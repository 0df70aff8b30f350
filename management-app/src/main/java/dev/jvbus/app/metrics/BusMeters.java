package dev.jvbus.app.metrics;

import dev.jvbus.app.service.BusEvent;
import dev.jvbus.app.service.ChangeTook;
import dev.jvbus.app.service.MigrationService;
import dev.jvbus.app.service.Operations;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;

/**
 * The bus's meters, kept in step with the topology: a device's queue meters exist from its hotplug on for
 * the queues every driver has (rx0 and tx0: at 0 until a driver starts them), and from the first time a driver
 * starts it for an optional queue (a virtio-net device with 16 queue pairs has 33 queues; a driver without MQ
 * uses two, and the others would be idle series in every scrape); a switch port's from its join, an exposure's
 * from its opening. Each goes when its device, port or exposure goes (a queue's meters stay across driver
 * resets: a series does not come and go with its driver), and a restored device gets its meters back (over its
 * new counters, under the same tags).
 *
 * <p>{@link #reconcile()} walks the bus and adds and removes meters to match it. It runs on every
 * {@link BusEvent} (so a hotplug's meters exist before its answer goes out) and before every scrape
 * ({@link ScrapeReconciler}: a device's port appears when its driver starts it, which no event reports).
 * Nothing here runs on the data path: the meters read the plain counters the data path owns, at scrape.
 *
 * <p>Besides, bus-wide: containers, devices by type and status, operations by kind and outcome, device
 * changes (the dashboard's hotplug annotations), hotplug latency and snapshot downtime.
 */
@Component
public class BusMeters {
    private static final Logger LOG = Logger.getLogger(BusMeters.class.getName());
    static final String CONTAINERS = "jvbus.containers";
    static final String DEVICES = "jvbus.devices";
    static final String MACS = "jvbus.network.macs";
    static final String OPERATIONS = "jvbus.operations";
    static final String DEVICE_CHANGES = "jvbus.device.changes";
    static final String HOTPLUG = "jvbus.hotplug";
    static final String DOWNTIME = "jvbus.snapshot.downtime";
    /** A device's status as one word, for the devices-by-status gauge. */
    static final List<String> STATUSES = List.of("reset", "negotiating", "running", "needs-reset", "failed");

    private final MeterRegistry registry;
    private final Bus bus;
    private final Operations operations;
    /** Meters by what they read, by identity: a device restored under the same devid is a new owner. */
    private final Map<Object, Object> owned = new IdentityHashMap<>();   // guarded by this
    private final Timer hotplug;
    /** Walks of the bus begun, and the latest one applied (guarded by this): an older view never undoes a newer one. */
    private final AtomicLong walks = new AtomicLong();
    private long applied;

    public BusMeters(MeterRegistry registry, Bus bus, Operations operations) {
        this.registry = registry;
        this.bus = bus;
        this.operations = operations;
        Gauge.builder(CONTAINERS, bus, b -> b.containers().size()).description("Containers on the bus").register(registry);
        for (String type : bus.models().types())
            for (String status : STATUSES)
                Gauge.builder(DEVICES, bus, b -> devices(b, type, status)).tags("type", type, "status", status)
                        .description("Devices on the bus by type and status (reset, negotiating, running = DRIVER_OK, needs-reset, failed)")
                        .register(registry);
        // At 0 from the start, so the first hotplug of a type is an increase Prometheus sees (the annotations).
        for (String type : bus.models().types())
            for (String change : List.of("added", "removed")) deviceChanges(type, change);
        hotplug = Timer.builder(HOTPLUG).description("Hotplug latency: from the request to the device on the bus")
                .publishPercentileHistogram(false).register(registry);
    }

    private Counter deviceChanges(String type, String change) {
        return Counter.builder(DEVICE_CHANGES).tags("type", type, "change", change)
                .description("Devices hotplugged (added) and hot-removed (removed), by type; the dashboard's hotplug annotations")
                .register(registry);
    }

    private static long devices(Bus b, String type, String status) {
        long n = 0;
        for (Container c : b.containers())
            for (Device d : c.devices())
                if (d.type().equals(type) && status(d.status().bits()).equals(status)) n++;
        return n;
    }

    static String status(int bits) {
        if ((bits & DeviceStatus.FAILED) != 0) return "failed";
        if ((bits & DeviceStatus.NEEDS_RESET) != 0) return "needs-reset";
        if ((bits & DeviceStatus.DRIVER_OK) != 0) return "running";
        return bits == 0 ? "reset" : "negotiating";
    }

    @EventListener(ApplicationReadyEvent.class)
    void ready() {
        reconcile();
    }

    /**
     * Every change on the bus: meters follow the topology, and the bus-wide counts go up. It runs on the
     * thread that made the change, so whatever goes wrong here is logged, never thrown back at the change.
     */
    @EventListener
    void on(BusEvent e) {
        try {
            count(e);
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "metrics: could not follow " + e.kind() + " " + e.subject(), ex);
        }
    }

    private void count(BusEvent e) {
        Map<String, Object> d = e.details();
        if (!e.kind().startsWith("session-") && !e.kind().startsWith("operation-")) reconcile();
        switch (e.kind()) {
            case "device-added", "device-removed" ->
                    deviceChanges(String.valueOf(d.get("type")), e.kind().equals("device-added") ? "added" : "removed").increment();
            case "operation-succeeded", "operation-failed", "operation-cancelled" -> {
                String kind = String.valueOf(d.get("kind"));
                Counter.builder(OPERATIONS).tags("kind", kind, "outcome", e.kind().substring("operation-".length()))
                        .description("Long operations (snapshot, restore, resume, migrate) that ended, by kind and outcome")
                        .register(registry).increment();
                if (e.kind().equals("operation-succeeded")) downtime(kind, String.valueOf(d.get("operation")));
            }
            case "session-opened", "session-closed" -> {
                String id = String.valueOf(d.get("exposure"));
                ExposureMeters m = exposure(id);
                if (m == null) {   // its session came before the exposure's own event reached us
                    reconcile();
                    m = exposure(id);
                }
                if (m != null) (e.kind().equals("session-opened") ? m.opened : m.closed).incrementAndGet();
            }
            default -> { }
        }
    }

    /** A change measured by the service that made it (hotplug). */
    @EventListener
    void on(ChangeTook t) {
        if (t.change().equals(ChangeTook.HOTPLUG)) hotplug.record(t.nanos(), TimeUnit.NANOSECONDS);
    }

    /** How long a snapshot or a migration kept its device from serving, from the operation's result. */
    private void downtime(String kind, String operation) {
        Object result;
        try {
            result = operations.show(operation).result();
        } catch (RuntimeException gone) {
            return;
        }
        long micros = switch (result) {
            case JsonNode doc when doc.has("downtimeMicros") -> doc.path("downtimeMicros").asLong();
            case MigrationService.MigrationResult m -> m.downtimeMicros();
            case null, default -> -1;
        };
        if (micros < 0) return;
        Timer.builder(DOWNTIME).tag("operation", kind)
                .description("How long a snapshot (or a migration) kept its device quiesced: from the pause to the resume")
                .register(registry).record(Duration.ofNanos(micros * 1_000));
    }

    private synchronized ExposureMeters exposure(String id) {
        for (Map.Entry<Object, Object> e : owned.entrySet())
            if (e.getKey() instanceof Exposure x && x.id().equals(id)) return (ExposureMeters) e.getValue();
        return null;
    }

    /**
     * Makes the meters match the bus: meters of what went away are removed first (a restored device's
     * meters carry the tags of the one it replaces), then what is new gets its meters. The bus is walked
     * without this object's lock (its listeners run on threads that may hold a connector's or device's
     * lock), and the lock is held only to change the registry.
     */
    public void reconcile() {
        long ticket = walks.incrementAndGet();
        Map<Object, Supplier<Object>> live = new IdentityHashMap<>();
        java.util.Set<Object> notYet = java.util.Collections.newSetFromMap(new IdentityHashMap<>());   // live, no meters until used
        for (Container c : bus.containers()) {
            for (Device d : c.devices()) {
                QueueLayout layout = d.queues();   // this device's (queue-pairs), not the model's default
                for (int i = 0; i < layout.count(); i++) {
                    int index = i;
                    QueueCounters q = d.queueCounters(i);
                    live.put(q, () -> new QueueMeters(registry, d, index));
                    if (!layout.queue(i).required() && !QueueMeters.used(q)) notYet.add(q);
                }
            }
            Networks nets = Networks.of(c);
            for (String name : nets.names()) {
                L2Switch sw = nets.network(name).orElse(null);
                if (sw == null) continue;
                live.put(sw, () -> macGauge(c.name(), sw));
                for (SwitchPort p : sw.ports()) live.put(p, () -> new PortMeters(registry, c.name(), p));
            }
            for (Exposure e : c.exposures().list()) {
                String kind = e.info().kind();
                live.put(e, () -> new ExposureMeters(registry, e, kind));
            }
        }
        synchronized (this) {
            if (ticket < applied) return;   // a walk that began later has been applied: this one's view is older
            applied = ticket;
            owned.entrySet().removeIf(e -> {
                if (live.containsKey(e.getKey())) return false;
                switch (e.getValue()) {
                    case QueueMeters q -> q.remove();
                    case PortMeters p -> p.remove();
                    case ExposureMeters x -> x.remove();
                    case Meter m -> registry.remove(m);
                    default -> throw new IllegalStateException("unknown meters " + e.getValue());
                }
                return true;
            });
            live.forEach((key, make) -> {
                Object have = owned.get(key);
                if (have == null) {
                    if (!notYet.contains(key)) owned.put(key, make.get());
                }
                else if (have instanceof QueueMeters q) q.faultsSeen();
            });
        }
    }

    private Meter macGauge(String container, L2Switch sw) {
        return Gauge.builder(MACS, sw, L2Switch::macCount).tags(Tags.of("container", container, "network", sw.name()))
                .description("MAC addresses the network's switch has learned (at most " + L2Switch.MAX_MACS + ")")
                .strongReference(true).register(registry);
    }
}
