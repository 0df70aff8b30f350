package dev.jvbus.app.service;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
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
 *   <li>{@code check-target}: the target answers and has the container (before anything stops here); its event
 *       stream is followed from now on, so the target's operations tell us their steps and ends at once (a target
 *       that refuses the subscription, at its subscriber limit, has its operations asked for instead);</li>
 *   <li>{@code prepare-on-target}: before anything stops here, the target restores the device from a state saved
 *       while it runs ({@link Device#saveAhead}: its features, config, parameters and queues as placed, without their
 *       positions) and answers once it exists there, paused and holding nothing ({@code restore?prepare=N}); its
 *       operation then waits N s for the completion, then N s for the driver, and removes the device itself if either
 *       never comes (a source that failed, or lost the target, leaves nothing behind for long);</li>
 *   <li>{@code quiesce}: the device pauses here (the downtime begins);</li>
 *   <li>{@code save}: its state is saved, and how it differs from the prepared one (the queues' positions, what
 *       is in flight, the model's state: a JSON merge patch, with the checksum of the whole) is the completion;</li>
 *   <li>{@code announce-move}: the device's driver is told where the device waits (for an shm client, MOVED
 *       with the target container's socket, which the target's API lists), so it reconnects there with the same
 *       memory and doorbells while the completion is on its way; the device stays paused here meanwhile;</li>
 *   <li>{@code complete-on-target}: one request ({@code .../complete-restore}) completes the prepared device and is
 *       answered once the driver is back there (the device still paused), or the target's operation ended without it;
 *       a stale completion (the driver renegotiated meanwhile) is refused and the move undone;</li>
 *   <li>{@code start-target}: only now is the target asked to start it (its resume operation: the device runs,
 *       then the target writes its store, then the operation succeeds); the target answers once the device runs
 *       ({@code await-running}: its operation at its {@code record} step), where the downtime ends; the
 *       operation's end (the store written there) comes on the event stream;</li>
 *   <li>{@code release-source}: the device is unplugged here.</li>
 * </ol>
 * The prepare, complete and start requests go over one connection of this migration's own, on its thread
 * ({@link TargetBus#postOnThisThread}): in the window, no hand-off to an HTTP client's threads.
 * If the target fails at any step before {@code start-target}, or the migration is cancelled before then, what
 * the target made is removed (by our undo, and by the target's own operation if the undo cannot reach it) and the
 * source resumes as it was: the target never starts a device by itself, so
 * until we ask it nothing runs there. Once asked, the migration is past cancelling, and if the target is lost
 * before it says whether it started the device, the outcome is unknown: the device stays paused here (never on
 * both) and the operation fails with {@code outcome-unknown}, saying what to check.
 * The device is held from the request to
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
            // Followed from now on: the target's operations report their steps and ends here as they happen,
            // so nothing is asked again and again while the device waits.
            try (TargetBus.Events events = target.events(p)) {

                // Outside the window: the target restores the device from what can be saved while it runs here (its
                // features, config, parameters, queues as placed), paused and holding nothing. Cancellable once its
                // Location is known, like the restore before; a target that never hears from us again removes it itself.
                p.step("prepare-on-target");
                ObjectNode aheadDoc = SnapshotDocument.write(SnapshotService.saveAhead(d), container, d.featureCatalog(), version.version(), 0, false);
                ObjectNode body = JSON.createObjectNode();
                body.set("snapshot", aheadDoc);
                if (request.overrides() != null && !request.overrides().isNull()) body.set("overrides", request.overrides());
                // On this thread: the connection it leaves open carries the requests in the window too.
                r = target.postOnThisThread(containerPath + "/restore?prepare=" + driverWait.toSeconds(), body, null);
                if (r.status() != 202 || r.location() == null) throw target.refused("refused to prepare the device", r);
                targetOp = r.location();
                if (r.body() != null && r.body().path("state").asString("").matches("failed|cancelled")) {
                    targetOp = null;
                    throw target.refused("failed to prepare the device", r);
                }
                p.checkpoint();

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
                ObjectNode completion = RestoreCompletion.body(opId(targetOp), aheadDoc.path("checksum").path("value").asString(),
                        aheadDoc.get("state"), SnapshotDocument.stateJson(saved.state()));

                // The device exists there already, paused: its driver may go now, while the completion is on its way
                // (sharing memory and doorbells starts nothing there). If the completion is refused, the undo removes the
                // device there and the driver, dropped by the target, stays here.
                p.step("announce-move");
                boolean told = socket != null && announce(d, new Relocation(target.base().toString(), there, new DevId((int) devid), socket));

                // One request: the positions saved at the pause complete the device there, and the answer comes once its
                // driver is back there (the device still paused), or the target's operation ended without that. Cancellable:
                // the undo cancels that operation, which removes the device, completed or not.
                p.step("complete-on-target");
                r = target.postOnThisThread(containerPath + "/devices/" + devid + "/complete-restore", completion, p);
                if (r.status() != 200 || r.body() == null) throw target.refused("refused to complete the device", r);
                JsonNode prepareOp = r.body().path("operation");
                String prepareState = prepareOp.path("state").asString("");
                End restored = r.body().path("driverBack").asBoolean(false) ? new End(targetOp, "succeeded", null)
                        : "running".equals(prepareState)
                        ? awaitEnd(target, events, targetOp, driverWait.plus(TargetBus.REQUEST), p, null)   // a slow driver: its end comes as an event
                        : new End(targetOp, prepareState, prepareOp.get("problem"));
                targetOp = null;
                if (!restored.succeeded()) throw target.refused("did not get the device's driver back", restored.asReply());
                targetMade = true;   // there, paused, its driver back: nothing runs it until we ask

                // From here on the target may run the device: we asked it to. Whatever we lose now, we cannot know
                // that it did not (the outcome is unknown, below), and no cancel undoes it.
                p.step("start-target");
                long[] running = {0};
                try {
                    r = target.postOnThisThread(containerPath + "/devices/" + devid + "/resume?driver-timeout=" + driverWait.toSeconds()
                            + "&await-running=true", null, null);
                } catch (OperationRefused lost) {
                    throw outcomeUnknown(target, container, containerPath, devid, null, lost);
                }
                if (r.status() != 202 || r.location() == null) throw target.refused("refused to start the device", r);   // it did not
                String startOp = r.location();
                // Answered once the device runs there (or its operation ended): the downtime ends with the answer.
                // A target that answered earlier (an older one) says so on its event stream, as before.
                if (r.body() != null && runs(r.body())) running[0] = System.nanoTime();
                End started;
                try {
                    started = awaitEnd(target, events, startOp, driverWait.plus(TargetBus.REQUEST), null,
                            () -> { if (running[0] == 0) running[0] = System.nanoTime(); });
                } catch (OperationRefused lost) {
                    throw outcomeUnknown(target, container, containerPath, devid, startOp, lost);
                }
                if (!started.succeeded()) throw target.refused("could not start the device", started.asReply());
                long downtime = (running[0] != 0 ? running[0] : System.nanoTime()) - t0;

                // From here on the device runs there: no cancel undoes that, so the source goes.
                p.step("release-source");
                changes.apply(() -> {
                    containers.require(container).moveOut(new DevId((int) devid));   // it may come back under its devid
                    return new BusChanges.Outcome<>(null, null);   // the container's DeviceRemoved is forwarded
                });
                return new MigrationResult(target.base().toString(), there, devid, socket, told, downtime / 1_000,
                        List.of(opId(restored.location()), opId(startOp)));
            }
        } catch (RuntimeException e) {
            if (e instanceof OperationRefused refused && refused.type() == ProblemType.OUTCOME_UNKNOWN) throw e;   // neither undo nor resume
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

    /** A resume operation's view says the device runs: its step {@code record} began, or it succeeded. */
    private static boolean runs(JsonNode op) {
        String state = op.path("state").asString("");
        if (!"running".equals(state)) return "succeeded".equals(state);
        JsonNode steps = op.path("steps");
        return !steps.isEmpty() && "record".equals(steps.get(steps.size() - 1).path("name").asString(""));
    }

    private static String opId(String location) {
        return location.substring(location.lastIndexOf('/') + 1);
    }

    /** How a target's operation ended: its state, and its problem when it did not succeed. */
    private record End(String location, String state, JsonNode problem) {
        boolean succeeded() { return "succeeded".equals(state); }

        /** As a reply with the operation's problem in it, for {@link TargetBus#refused}. */
        TargetBus.Reply asReply() {
            ObjectNode op = JSON.createObjectNode();
            op.put("state", state);
            if (problem != null) op.set("problem", problem);
            return new TargetBus.Reply(200, op, location);
        }
    }

    /**
     * Waits for the end of the target's operation at {@code location}, as its events report it (and its
     * {@code record} step, the device running, to {@code onRunning}); where the event stream ended, by
     * asking for the operation. Cancellable through {@code p} when given.
     */
    private static End awaitEnd(TargetBus target, TargetBus.Events events, String location, Duration timeout, Operations.Progress p,
                                Runnable onRunning) {
        String id = opId(location);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            TargetBus.Event e = events.next(id, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())), p);
            if (e == null)
                throw new OperationRefused(ProblemType.TARGET_FAILED, "the target bus " + target.base() + "'s operation " + location
                        + " did not end within " + timeout.toSeconds() + " s", Map.of("target", target.base().toString()));
            if (e == TargetBus.Event.END) break;
            switch (e.kind()) {
                case "operation-step" -> {
                    if ("record".equals(e.step()) && onRunning != null) onRunning.run();
                }
                case "operation-succeeded", "operation-failed", "operation-cancelled" -> {
                    return new End(location, e.kind().substring("operation-".length()), e.data().path("details").get("problem"));
                }
                default -> { }
            }
        }
        // The stream ended (the target went away, or we fell behind): ask, a few times, for a connection that broke.
        OperationRefused last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            try {
                JsonNode end = target.follow(location, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())), p);
                if (onRunning != null && end.path("steps").valueStream().anyMatch(st -> "record".equals(st.path("name").asString(""))))
                    onRunning.run();
                return new End(location, end.path("state").asString(""), end.get("problem"));
            } catch (OperationRefused lost) {
                last = lost;
                if (p != null) p.await(() -> false, Duration.ofSeconds(1));
                else java.util.concurrent.locks.LockSupport.parkNanos(Duration.ofSeconds(1).toNanos());
            }
        }
        throw last;
    }

    /**
     * We asked the target to start the device and lost it before it said whether it did. Resuming here
     * could run the device on both buses (the rings are the driver's: two buses would serve them at once);
     * removing it here could leave it on neither. So the device stays paused here, and the operator is told
     * what to check and what to do either way.
     */
    private static OperationRefused outcomeUnknown(TargetBus target, String container, String containerPath, long devid, String startOp,
                                                   OperationRefused why) {
        String thereDevice = target.base() + containerPath + "/devices/" + devid;
        String here = ContainerService.path(container) + "/devices/" + devid;
        Map<String, Object> where = new java.util.LinkedHashMap<>();
        where.put("target", target.base().toString());
        where.put("targetDevice", thereDevice);
        if (startOp != null) where.put("targetOperation", target.base() + startOp);
        where.put("device", here);
        return new OperationRefused(ProblemType.OUTCOME_UNKNOWN, "the target bus " + target.base() + " was asked to start device " + devid
                + " and was lost before it said whether it did (" + why.getMessage() + "): whether the device runs there is unknown."
                + " It stays paused here, so it never runs on both buses. Check the target: GET " + thereDevice
                + (startOp != null ? " (and its operation " + target.base() + startOp + ")" : "")
                + ". If it runs there (DRIVER_OK, not paused), remove it here (DELETE " + here + "): its driver then follows it there."
                + " If it is not there, resume it here (POST " + here + "/resume).", where);
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
