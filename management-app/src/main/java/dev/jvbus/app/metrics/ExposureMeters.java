package dev.jvbus.app.metrics;

import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.SessionRefusal;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The meters of one exposure (an shm socket, a vhost-user back-end): sessions opened and closed (counted
 * from the exposure's own reports, which come once per session, never per frame), peers refused by
 * reason and the bytes of shared memory its sessions map (both kept by the connector), and the sessions
 * live now. Tags: container, exposure (its id, unique on the bus) and kind.
 */
final class ExposureMeters {
    static final String SESSIONS = "jvbus.exposure.sessions";
    static final String LIVE = "jvbus.exposure.sessions.live";
    static final String REFUSED = "jvbus.exposure.refused";
    static final String MAPPED = "jvbus.exposure.mapped";

    private final MeterRegistry registry;
    private final List<Meter> meters = new ArrayList<>();
    final AtomicLong opened = new AtomicLong(), closed = new AtomicLong();

    ExposureMeters(MeterRegistry registry, Exposure e, String kind) {
        this.registry = registry;
        Tags tags = Tags.of("container", e.container(), "exposure", e.id(), "kind", kind);
        String help = "Peer sessions of the exposure: opened (admitted) and closed";
        meters.add(FunctionCounter.builder(SESSIONS, opened, AtomicLong::get).tags(tags).tag("event", "opened").description(help).register(registry));
        meters.add(FunctionCounter.builder(SESSIONS, closed, AtomicLong::get).tags(tags).tag("event", "closed").description(help).register(registry));
        for (SessionRefusal r : SessionRefusal.values())
            meters.add(FunctionCounter.builder(REFUSED, e, x -> x.refused(r)).tags(tags).tag("reason", r.name().toLowerCase(Locale.ROOT))
                    .description("Peers the exposure turned away before they got a session, by reason (not_allowed, limit, busy, device, resources)")
                    .register(registry));
        meters.add(Gauge.builder(MAPPED, e, Exposure::mappedBytes).tags(tags).baseUnit("bytes")
                .description("Bytes of its peers' shared memory the exposure's live sessions have mapped").strongReference(true).register(registry));
        meters.add(Gauge.builder(LIVE, e, x -> x.info().sessions().size()).tags(tags)
                .description("Peer sessions of the exposure live now").strongReference(true).register(registry));
    }

    void remove() {
        meters.forEach(registry::remove);
        meters.clear();
    }
}
