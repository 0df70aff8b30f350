package dev.jvbus.app.console;

import dev.jvbus.app.service.BusEvent;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;

/**
 * The last events of the bus, newest first, for the overview's first paint (the live ones come by the
 * event stream after it). Bounded; adding one is a short lock, never a wait, since the publishing thread
 * may be a device's worker reporting NEEDS_RESET.
 */
@Component
public class RecentEvents {
    static final int KEPT = 30;
    private final ArrayDeque<BusEvent> last = new ArrayDeque<>(KEPT);

    @EventListener
    void record(BusEvent e) {
        synchronized (last) {
            if (last.size() == KEPT) last.removeLast();
            last.addFirst(e);
        }
    }

    public List<BusEvent> newestFirst() {
        synchronized (last) {
            return new ArrayList<>(last);
        }
    }
}
