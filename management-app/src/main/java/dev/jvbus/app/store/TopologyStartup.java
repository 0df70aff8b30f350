package dev.jvbus.app.store;

import dev.jvbus.core.bus.Bus;
import java.io.PrintStream;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.stereotype.Component;

/**
 * At start, before anything else touches the bus: when the store has a topology, it is the truth
 * and is built again (same containers, networks, devids, MACs); when it has none, this is the first
 * start and the embedded default may be created.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE)
public class TopologyStartup implements ApplicationRunner {
    private final Bus bus;
    private final TopologyStore store;
    private final PrintStream out = System.out;
    private volatile boolean restored;

    public TopologyStartup(Bus bus, TopologyStore store) {
        this.bus = bus;
        this.store = store;
    }

    @Override
    public void run(ApplicationArguments args) {
        store.load().ifPresent(doc -> {
            TopologyRecorder.build(bus, doc, out);
            restored = true;
            out.println("jvbus: topology from " + store.file() + ": " + doc.containers().size() + " container(s), "
                    + doc.containers().stream().mapToInt(c -> c.devices().size()).sum() + " device(s)");
        });
    }

    /** True when this start rebuilt a stored topology (so it is not the first start). */
    public boolean restored() {
        return restored;
    }
}
