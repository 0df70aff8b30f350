package dev.jvbus.app.service;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.Relocation;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.stereotype.Service;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * Moves a device to another bus through that bus's API, as an operation with progress and cancel:
 * <ol>
 *   <li>{@code check-target}: the target answers and has the container (before anything stops here);</li>
 *   <li>{@code quiesce}: the device pauses here;</li>
 *   <li>{@code save}: its state document is written;</li>
 *   <li>{@code restore-on-target}: the target restores it (its restore operation, followed);</li>
 *   <li>{@code announce-move}: the device's driver is told where the device waits (for an shm client, MOVED
 *       with the target container's socket, which the target's API lists), so it reconnects there with
 *       the same memory and doorbells; the device stays paused here meanwhile;</li>
 *   <li>{@code start-target}: the target resumes it once the driver is back there (its resume operation);</li>
 *   <li>{@code release-source}: the device is unplugged here.</li>
 * </ol>
 * If the target fails at any step, or the migration is cancelled before the source is released, what
 * the target made is removed and the source resumes as it was. The device is held from the request to
 * the end: unplugging, snapshotting or migrating it meanwhile is refused as DEVICE_BUSY. Only targets
 * configured on this bus ({@link MigrationTargets}) are accepted, with the credential configured there.
 */
@Service
@EnableConfigurationProperties(MigrationTargets.class)
public class MigrationService {
    private static final Logger LOG = Logger.getLogger(MigrationService.class.getName());
    static final Duration DEFAULT_DRIVER_WAIT = Duration.ofSeconds(60);
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final SnapshotService snapshots;
    private final BusChanges changes;
    private final ContainerService containers;
    private final BusVersion version;
    private final MigrationTargets targets;

    public MigrationService(SnapshotService snapshots, BusChanges changes, ContainerService containers, BusVersion version,
                            MigrationTargets targets) {
        this.snapshots = snapshots;
        this.changes = changes;
        this.containers = containers;
        this.version = version;
        this.targets = targets;
    }

    /**
     * What a migration returns: where the device lives now (the target bus, its container and devid, and
     * the shm socket its driver reconnects to there, when it has one), whether its driver was told to
     * follow (MOVED), and for how long it did not serve.
     */
    public record MigrationResult(String to, String container, long devid, String socket, boolean driverTold,
                                  long downtimeMicros, List<String> targetOperations) { }


    /** How an operator names each configured target (its name, else its URL), for forms that offer them. */
    public java.util.List<String> targetNames() {
        return targets.targets().stream().map(MigrationTargets.Target::label).toList();
    }
    public OperationView migrate(String container, long devid, MigrateRequest request) {
        if (request.credentials() != null)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a migration takes no \"credentials\": this bus logs in to its"
                    + " targets with the credential its operator configured for each (jvbus.migration.targets)", Map.of("field", "credentials"));
        MigrationTargets.Target configured = targets.require(request.to());
        URI to = configured.uri();
        String there = request.container() == null || request.container().isBlank() ? container : request.container();
        Duration driverWait = request.driverTimeoutSeconds() == null ? DEFAULT_DRIVER_WAIT : Duration.ofSeconds(request.driverTimeoutSeconds());
        if (request.driverTimeoutSeconds() != null
                && (request.driverTimeoutSeconds() < 1 || driverWait.compareTo(SnapshotService.MAX_DRIVER_WAIT) > 0))
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "driverTimeoutSeconds is 1.." + SnapshotService.MAX_DRIVER_WAIT.toSeconds(),
                    Map.of("field", "driverTimeoutSeconds"));
        if (request.overrides() != null && !request.overrides().isNull() && !request.overrides().isObject())
            throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "\"overrides\" is an object, as for a restore", Map.of("where", "/overrides"));
        String containerPath = "/api/v1/containers/" + there;
        return snapshots.holding("migrate", container, devid, (d, p) -> {
            try (TargetBus target = new TargetBus(to, configured.authorization())) {
                return migrate(d, p, target, container, devid, there, containerPath, driverWait, request);
            }
        });
    }

    private MigrationResult migrate(dev.jvbus.core.bus.Device d, Operations.Progress p, TargetBus target, String container, long devid,
                                    String there, String containerPath, Duration driverWait, MigrateRequest request) {
        boolean paused = false;
        boolean wasPaused = d.isPaused();
        String targetOp = null;
        boolean targetMade = false;
        long t0 = 0;
        try {
            p.step("check-target");
            TargetBus.Reply r = target.get(containerPath, p);
            if (r.status() != 200) throw target.refused("cannot take the device into container '" + there + "'", r);
            // Asked now, not while the device is paused: every round trip then is downtime.
            String socket = shmSocket(target, there, p);

            p.step("quiesce");
            t0 = System.nanoTime();
            try {
                d.pause();
            } catch (DeviceException e) {
                throw new OperationRefused(ProblemType.REFUSED, "device " + devid + " could not be paused: " + e.getMessage());
            }
            paused = true;

            p.step("save");
            SnapshotService.Saved saved = SnapshotService.save(d, true);
            ObjectNode doc = SnapshotDocument.write(saved.state(), container, d.featureCatalog(), version.version(),
                    System.nanoTime() - t0, true);

            p.step("restore-on-target");
            ObjectNode body = JSON.createObjectNode();
            body.set("snapshot", doc);
            if (request.overrides() != null && !request.overrides().isNull()) body.set("overrides", request.overrides());
            // Not cancellable while in flight (bounded all the same): a request the target got and we gave up on
            // would leave an operation there we know nothing of. Cancel takes effect once its Location is known.
            r = target.post(containerPath + "/restore", body, null);
            if (r.status() != 202 || r.location() == null) throw target.refused("refused the restore", r);
            targetOp = r.location();
            var end = target.follow(targetOp, TargetBus.REQUEST, p);
            targetOp = null;
            if (!"succeeded".equals(end.path("state").asString(""))) throw target.refused("failed the restore", new TargetBus.Reply(200, end, null));
            targetMade = true;
            String restoreOp = end.path("id").asString("");

            p.step("announce-move");
            boolean told = socket != null && announce(d, new Relocation(target.base().toString(), there, new DevId((int) devid), socket));

            p.step("start-target");
            r = target.post(containerPath + "/devices/" + devid + "/resume?driver-timeout=" + driverWait.toSeconds(), null, null);
            if (r.status() != 202 || r.location() == null) throw target.refused("refused to start the device", r);
            targetOp = r.location();
            end = target.follow(targetOp, driverWait.plus(TargetBus.REQUEST), p);
            targetOp = null;
            if (!"succeeded".equals(end.path("state").asString(""))) throw target.refused("could not start the device", new TargetBus.Reply(200, end, null));
            long downtime = System.nanoTime() - t0;

            // From here on the device runs there: no cancel undoes that, so the source goes.
            p.step("release-source");
            changes.apply(() -> {
                containers.require(container).moveOut(new DevId((int) devid));   // it may come back under its devid
                return new BusChanges.Outcome<>(null, null);   // the container's DeviceRemoved is forwarded
            });
            return new MigrationResult(target.base().toString(), there, devid, socket, told, downtime / 1_000,
                    List.of(restoreOp, end.path("id").asString("")));
        } catch (RuntimeException e) {
            undo(target, targetOp, targetMade ? containerPath + "/devices/" + devid : null);
            if (paused && !wasPaused) {
                try {
                    d.resume();
                } catch (DeviceException resumeFailed) {
                    LOG.log(Level.WARNING, "migration of " + container + "/" + devid + ": the source could not resume", resumeFailed);
                }
            }
            throw e;
        }
    }

    /**
     * The shm socket of container {@code there} on the target, as its API lists it, or null when the
     * target does not expose that container on shm (a vhost-user guest follows through its own
     * migration instead). The path is the target's: on one machine, or a shared runtime directory, it is
     * where the driver reconnects.
     */
    private static String shmSocket(TargetBus target, String there, Operations.Progress p) {
        TargetBus.Reply r = target.get("/api/v1/exposures", p);
        if (r.status() != 200 || r.body() == null) throw target.refused("did not list its exposures", r);
        JsonNode list = r.body().isArray() ? r.body() : r.body().path("exposures");
        for (JsonNode e : list)
            if ("shm".equals(e.path("kind").asString("")) && there.equals(e.path("container").asString(""))
                    && !"CLOSED".equals(e.path("state").asString("")) && e.path("path").isString())
                return e.path("path").asString();
        return null;
    }

    /** Tells the device's driver where it moves; false when no driver holds it or its connector cannot follow. */
    private static boolean announce(dev.jvbus.core.bus.Device d, Relocation to) {
        try {
            return d.announceMove(to);
        } catch (DeviceException e) {
            throw new OperationRefused(ProblemType.REFUSED, "device " + d.devid().unsigned() + " could not announce its move: " + e.getMessage());
        }
    }

    /** Cancels what the target is doing for us and removes what it made; best effort, each step bounded. */
    private static void undo(TargetBus target, String runningOp, String madeDevice) {
        if (runningOp != null) {
            target.sendQuietly("POST", runningOp + "/cancel");
            try {
                var end = target.follow(runningOp, TargetBus.REQUEST, null);
                // A restore that got as far as making the device, though we stopped following it.
                if (madeDevice == null && "succeeded".equals(end.path("state").asString(""))
                        && "restore".equals(end.path("kind").asString(""))) {
                    String devicePath = end.path("result").path("device").path("devid").isMissingNode() ? null
                            : end.path("subject").asString("") + "/devices/" + end.path("result").path("device").path("devid").asLong();
                    if (devicePath != null) removeOnTarget(target, devicePath);
                }
            } catch (RuntimeException e) {
                LOG.log(Level.INFO, "migration undo: the target's operation " + runningOp + " did not end", e);
            }
        }
        if (madeDevice != null) removeOnTarget(target, madeDevice);
    }

    /**
     * Unplugs what the target made. An operation of the target may still hold it (a resume we stopped
     * following): then the target names that operation in its device-busy problem, and it is cancelled first.
     */
    private static void removeOnTarget(TargetBus target, String devicePath) {
        for (int attempt = 0; attempt < 3; attempt++) {
            TargetBus.Reply r = target.sendQuietly("DELETE", devicePath);
            if (r.status() != 409 || r.body() == null || !r.body().has("operation")) return;
            String op = "/api/v1/operations/" + r.body().path("operation").asString();
            target.sendQuietly("POST", op + "/cancel");
            try {
                target.follow(op, TargetBus.REQUEST, null);
            } catch (RuntimeException e) {
                LOG.log(Level.INFO, "migration undo: the target's operation " + op + " did not end", e);
                return;
            }
        }
    }

}
