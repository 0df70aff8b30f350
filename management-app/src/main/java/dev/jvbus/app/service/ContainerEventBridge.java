package dev.jvbus.app.service;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.ContainerEvent;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * Forwards what the bus itself reports (hotplug, unplug, NEEDS_RESET with its reason, a container
 * destroyed) as {@link BusEvent}s, whoever caused it: the API, a connector, a guest.
 */
@Component
class ContainerEventBridge {
    private final BusChanges changes;
    private final ApplicationEventPublisher events;
    private final Set<String> watched = new HashSet<>();

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
            if (!watched.add(c.name())) return;
        }
        c.subscribe(e -> events.publishEvent(translate(e)));
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
