package dev.jvbus.app.service;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.state.DeviceState;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.stereotype.Component;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Runs a migration's state path once the app is ready, so the first migration into or out of a fresh bus does
 * not pay for it while its device does not serve: on a fresh JVM every class of that path is loaded and runs
 * interpreted at first (the first two migrations of {@code bench-migrate} took 300-1100 ms, the later ones 60-200).
 * What runs: each model's device saved ahead and at a pause, the state document written and read (checksum,
 * codec), the completion's merge patch made and applied, a device restored from it and completed, each a few
 * hundred times (200). All of it on a scratch {@link Bus} of its own with the same models, dropped at the end: nothing
 * the app serves, stores or announces is touched. In the background, at the lowest priority a virtual thread
 * has; a failure is logged and changes nothing (the path then warms up on its first real use, as before).
 */
@Component
class MigrationWarmUp {
    private static final Logger LOG = Logger.getLogger(MigrationWarmUp.class.getName());
    static final int ROUNDS = 200;

    private final BusChanges changes;
    private final BusVersion version;

    MigrationWarmUp(BusChanges changes, BusVersion version) {
        this.changes = changes;
        this.version = version;
    }

    @EventListener(ApplicationReadyEvent.class)
    void onReady() {
        DeviceModels models = changes.bus().models();
        Thread.ofVirtual().name("jvbus-migration-warm-up").start(() -> {
            try {
                long t0 = System.nanoTime();
                int rounds = run(models, version.version(), ROUNDS);
                LOG.fine(() -> "migration warm-up: " + rounds + " rounds in " + (System.nanoTime() - t0) / 1_000_000 + " ms");
            } catch (RuntimeException | LinkageError e) {
                LOG.log(Level.INFO, "migration warm-up stopped (the first migration warms up instead): " + e, e);
            }
        });
    }

    /** Runs the path {@code rounds} times for every model this bus has, on a scratch bus; returns the rounds run. */
    static int run(DeviceModels models, String busVersion, int rounds) {
        try (Bus scratch = new Bus(models)) {
            Container from = scratch.createContainer("warm-up-source");
            int done = 0;
            for (String type : models.types()) {
                Device d;
                try {
                    d = from.addDevice(type);
                } catch (RuntimeException needsMore) {
                    continue;   // a model that needs parameters or resources a bare scratch container lacks: not warmed
                }
                for (int i = 0; i < rounds; i++) {
                    Container to = scratch.createContainer("warm-up-target-" + type + "-" + i);
                    DeviceState ahead = SnapshotService.saveAhead(d);
                    ObjectNode doc = SnapshotDocument.write(ahead, from.name(), d.featureCatalog(), busVersion, 0, false);
                    SnapshotDocument.Read read = SnapshotDocument.read(doc, models, "/snapshot");
                    DeviceState later = d.save();
                    ObjectNode completion = RestoreCompletion.body("op-0", doc.path("checksum").path("value").asString(),
                            doc.get("state"), SnapshotDocument.stateJson(later));
                    RestoreCompletion c = RestoreCompletion.parse(completion);
                    JsonNode merged = RestoreCompletion.apply(doc.get("state"), c.changes());
                    if (!SnapshotDocument.checksum(merged).equals(c.checksum())) throw new IllegalStateException("the completion does not add up");
                    DeviceState completed = SnapshotDocument.decodeState(merged, models, "/changes", busVersion);
                    Device restored = to.restoreDevice(read.state());
                    if (restored.isPaused()) restored.completeRestore(completed);
                    to.removeDevice(restored.devid());
                    scratch.destroyContainer(to.name());
                    done++;
                }
            }
            return done;
        }
    }
}
