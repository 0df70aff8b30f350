package dev.jvbus.app.store;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Exposure;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.stereotype.Component;

/**
 * At start, before anything else touches the bus: when the store has a topology, it is the truth
 * and is built again (same containers, networks, devids, MACs, and exposures under the same ids on
 * the same sockets; an exposure the operator closed stays closed); when it has none, this is the
 * first start and the embedded default may be created.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE)
public class TopologyStartup implements ApplicationRunner {
    private final Bus bus;
    private final TopologyStore store;
    private final ExposureReopener exposures;
    private final PrintStream out = System.out;
    private volatile boolean restored;

    public TopologyStartup(Bus bus, TopologyStore store, ExposureReopener exposures) {
        this.bus = bus;
        this.store = store;
        this.exposures = exposures;
    }

    @Override
    public void run(ApplicationArguments args) {
        store.load().ifPresent(doc -> {
            TopologyRecorder.build(bus, doc, out);
            int opened = reopenExposures(doc);
            restored = true;
            out.println("jvbus: topology from " + store.file() + ": " + doc.containers().size() + " container(s), "
                    + doc.containers().stream().mapToInt(c -> c.devices().size()).sum() + " device(s), " + opened + " exposure(s)");
        });
    }

    /**
     * Opens the stored exposures in the order the bus first opened them, each under its stored id (the
     * bus's counter is set just below it), then moves the counter past every id used before. One that
     * cannot be opened stops the start, naming it: going on without it would drop it from the store at
     * the next change, and a socket the operator made would vanish without a word.
     */
    private int reopenExposures(TopologyDocument doc) {
        record Stored(Container container, TopologyDocument.ExposureEntry entry) { }
        List<Stored> all = new ArrayList<>();
        for (TopologyDocument.ContainerEntry ce : doc.containers())
            for (TopologyDocument.ExposureEntry e : ce.exposures()) all.add(new Stored(bus.requireContainer(ce.name()), e));
        all.sort(Comparator.comparingLong(s -> s.entry().number()));
        for (Stored s : all) {
            bus.skipExposureIdsBelow(s.entry().number());
            Exposure e;
            try {
                e = exposures.reopen(s.container(), s.entry());
            } catch (RuntimeException ex) {
                throw new TopologyStore.StoreException(store.file() + ": exposure " + s.entry().id() + " of container '"
                        + s.container().name() + "' (" + describe(s.entry()) + ") cannot be opened again: " + ex.getMessage()
                        + "; fix what is in its way, or remove it from the file");
            }
            if (!e.id().equals(s.entry().id()))
                throw new TopologyStore.StoreException(store.file() + ": exposure " + s.entry().id() + " came back as " + e.id()
                        + "; two stored exposures share a number");
        }
        bus.skipExposureIdsBelow(doc.nextExposureId());
        return all.size();
    }

    private static String describe(TopologyDocument.ExposureEntry e) {
        return e.kind() + (e.mode() == null ? "" : " " + e.mode()) + (e.devid() == null ? "" : " of devid " + e.devid()) + " on " + e.path();
    }

    /** True when this start rebuilt a stored topology (so it is not the first start). */
    public boolean restored() {
        return restored;
    }
}
