package dev.jvbus.app.service;

import dev.jvbus.app.store.ExposureKind;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.ContainerEvent;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureObserver;
import dev.jvbus.core.bus.SessionInfo;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * Forwards what the bus itself reports (hotplug, unplug, NEEDS_RESET with its reason, a container
 * destroyed; exposures opened and closed, their peers' sessions opened and closed) as {@link BusEvent}s,
 * whoever caused it: the API, a connector, a guest.
 */
@Component
class ContainerEventBridge {
    private final BusChanges changes;
    private final ApplicationEventPublisher events;
    /** By identity, not name: a container destroyed and made again under its name is a new one to watch. */
    private final Set<Container> watched = Collections.newSetFromMap(new WeakHashMap<>());

    ContainerEventBridge(BusChanges changes, ApplicationEventPublisher events) {
        this.changes = changes;
        this.events = events;
    }

    @EventListener(ApplicationReadyEvent.class)
    void watchExisting() {
        changes.bus().containers().forEach(this::watch);
    }

    @EventListener
    void onCreated(BusEvent e) {
        if (e.kind().equals("container-created")) changes.bus().container((String) e.details().get("container")).ifPresent(this::watch);
    }

    private void watch(Container c) {
        synchronized (watched) {
            if (!watched.add(c)) return;
        }
        c.subscribe(e -> events.publishEvent(translate(e)));
        c.exposures().watch(new ExposureObserver() {
            @Override public void opened(Exposure e) { events.publishEvent(exposureEvent("exposure-created", e)); }
            @Override public void closed(Exposure e) { events.publishEvent(exposureEvent("exposure-closed", e)); }
            @Override public void sessionOpened(Exposure e, SessionInfo s) { events.publishEvent(sessionEvent("session-opened", e, s)); }
            @Override public void sessionClosed(Exposure e, SessionInfo s) { events.publishEvent(sessionEvent("session-closed", e, s)); }
        });
    }

    /** An exposure opened or closed: its id, kind, mode, what it exposes and its socket. */
    static BusEvent exposureEvent(String kind, Exposure e) {
        ExposureInfo i = e.info();
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("exposure", i.id());
        ExposureKind.byListed(i.kind()).ifPresentOrElse(k -> {
            d.put("kind", k.connector());
            if (k.mode() != null) d.put("mode", k.mode());
        }, () -> d.put("kind", i.kind()));
        d.put("container", i.container());
        i.devid().ifPresent(id -> d.put("devid", id.unsigned()));
        d.put("path", i.socket().toString());
        return BusEvent.now(kind, ExposureService.path(i.id()), d);
    }

    /** A peer's session began or ended: the exposure, and who the peer is by the kernel's word. */
    static BusEvent sessionEvent(String kind, Exposure e, SessionInfo s) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("exposure", e.id());
        d.put("container", e.container());
        e.devid().ifPresent(id -> d.put("devid", id.unsigned()));
        d.put("pid", s.pid());
        d.put("uid", s.uid());
        d.put("gid", s.gid());
        d.put("since", s.since().toString());
        return BusEvent.now(kind, ExposureService.path(e.id()), d);
    }

    static BusEvent translate(ContainerEvent e) {
        String at = ContainerService.path(e.container());
        return switch (e) {
            case ContainerEvent.DeviceAdded a -> BusEvent.now("device-added", at + "/devices/" + a.devid(),
                    Map.of("container", a.container(), "devid", a.devid().unsigned(), "type", a.type()));
            case ContainerEvent.DeviceRemoved r -> BusEvent.now("device-removed", at + "/devices/" + r.devid(),
                    Map.of("container", r.container(), "devid", r.devid().unsigned(), "type", r.type()));
            case ContainerEvent.DeviceNeedsReset n -> BusEvent.now("device-needs-reset", at + "/devices/" + n.devid(),
                    Map.of("container", n.container(), "devid", n.devid().unsigned(), "reason", n.reason()));
            case ContainerEvent.ContainerDestroyed d -> BusEvent.now("container-destroyed", at, Map.of("container", d.container()));
        };
    }
}
