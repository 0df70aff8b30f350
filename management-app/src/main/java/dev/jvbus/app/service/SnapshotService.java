package dev.jvbus.app.service;

import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.connector.vhostuser.VhostUserConnector;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.net.Networks;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.stereotype.Service;
import tools.jackson.databind.JsonNode;

/**
 * Save and restore of devices, as long operations: a snapshot quiesces a device for as short a time as
 * it can and returns its state document ({@link SnapshotDocument}); a restore takes such a document,
 * checks it, imposes its negotiated features and brings the device back paused, waiting for its driver;
 * a resume starts it once the driver is back (after a restore) or lets a paused device run on.
 */
@Service
public class SnapshotService {
    /** The longest a resume waits for a driver to come back: a bound, like every wait here. */
    public static final Duration MAX_DRIVER_WAIT = Duration.ofMinutes(10);

    private final BusChanges changes;
    private final DeviceService devices;
    private final ContainerService containers;
    private final Operations operations;
    private final BusVersion version;
    private final VhostUserConnector vhostUser;
    private final NetworkService networks;

    public SnapshotService(BusChanges changes, DeviceService devices, ContainerService containers, Operations operations,
                           BusVersion version, VhostUserConnector vhostUser, NetworkService networks) {
        this.networks = networks;
        this.changes = changes;
        this.devices = devices;
        this.containers = containers;
        this.operations = operations;
        this.version = version;
        this.vhostUser = vhostUser;
    }

    // ================================================================ snapshot

    /**
     * Snapshots a device: pause, save, resume at once (unless {@code stayPaused}, for a migration an
     * operator drives by hand, or unless it was paused already). The result is the state document; the
     * downtime it reports is from the pause to the resume, the only time the device does not serve.
     */
    public OperationView snapshot(String container, long devid, boolean stayPaused) {
        return holding("snapshot", container, devid, (d, p) -> {
            p.step("quiesce-and-save");
            Saved s = save(d, stayPaused);
            p.step("write-document");
            return SnapshotDocument.write(s.state(), container, d.featureCatalog(), version.version(), s.downtimeNanos(), s.paused());
        });
    }

    /** A state saved from a device, and how long the device did not serve for it. */
    record Saved(DeviceState state, long downtimeNanos, boolean paused) { }

    /** Pause, save, and resume unless asked not to (or it was paused before): nothing else in between. */
    static Saved save(Device d, boolean stayPaused) {
        boolean wasPaused = d.isPaused();
        long t0 = System.nanoTime();
        DeviceState state;
        try {
            d.pause();
            try {
                state = d.save();
            } finally {
                if (!stayPaused && !wasPaused) d.resume();
            }
        } catch (DeviceException e) {
            throw new OperationRefused(ProblemType.REFUSED, "device " + d.devid() + " could not be saved: " + e.getMessage());
        }
        long downtime = System.nanoTime() - t0;
        return new Saved(withMac(d, state), downtime, stayPaused || wasPaused);
    }

    /**
     * The state with the device's MAC among its parameters even where the model generated it: the
     * guest knows that address, so the device must keep it wherever it is restored (a generated one
     * derives from the container and devid, which may differ there).
     */
    private static DeviceState withMac(Device d, DeviceState s) {
        if (s.params().containsKey("mac")) return s;
        var mac = TopologyRecorder.macOf(d);
        if (mac.isEmpty()) return s;
        Map<String, String> params = new HashMap<>(s.params());
        params.put("mac", mac.get());
        return new DeviceState(s.type(), s.devid(), s.status(), s.limit(), s.negotiated(), s.config(), s.queues(), params, s.model());
    }

    // ================================================================ restore

    /** What a checked restore makes: the state as it is restored (overrides applied) and under which limit. */
    record Checked(RestorePlan plan, DeviceState state, long limit, RestoreRequest.Overrides overrides) { }

    /** Says what a restore would do, changing nothing; refuses as the restore would. */
    public RestorePlan dryRun(String container, JsonNode body) {
        RestoreRequest request = RestoreRequest.parse(body);
        return check(container, request, read(request), true).plan();
    }

    /** Restores a device from a snapshot document: checked now, restored by an operation. */
    public OperationView restore(String container, JsonNode body) {
        RestoreRequest request = RestoreRequest.parse(body);
        SnapshotDocument.Read read = read(request);
        check(container, request, read, false);   // refuse at once what is wrong, before any operation exists
        return operations.start("restore", ContainerService.path(container), p -> restoreSteps(container, request, read, p, true));
    }

    /** How long a wait for a migrated driver looks at it every quarter millisecond: it usually comes back within this. */
    private static final Duration PROMPT_DRIVER_WAIT = Duration.ofSeconds(2);

    /**
     * Restores a device for a migration: as {@link #restore}, but answered only once the device exists here
     * (paused, waiting for its driver), so the source tells the driver to come at once; the operation then
     * waits up to {@code driverWait} for the driver to share its memory and doorbells again and succeeds
     * with the device still paused: the source starts it ({@link #resume}) when it learns that (the
     * operation's end on the event stream), and only then; what the source has not asked for never runs
     * here, so a source that loses this bus before asking knows the device did not start. If the driver
     * does not come, or the operation is cancelled, the device is removed again. The store is written when
     * the device starts (the resume), not here: a forced write less while the guest waits.
     */
    public OperationView restoreAwaitingDriver(String container, JsonNode body, Duration driverWait) {
        if (driverWait.compareTo(Duration.ofSeconds(1)) < 0 || driverWait.compareTo(MAX_DRIVER_WAIT) > 0)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "await-driver is 1.." + MAX_DRIVER_WAIT.toSeconds() + " seconds",
                    Map.of("field", "await-driver"));
        RestoreRequest request = RestoreRequest.parse(body);
        SnapshotDocument.Read read = read(request);
        check(container, request, read, false);   // refuse at once what is wrong, before any operation exists
        // The restore itself on this (the request's) thread: the answer waits for it anyway.
        return operations.begin("restore", ContainerService.path(container)).runFirstHere(
                p -> restoreSteps(container, request, read, p, false),
                (r, p) -> {
                    long devid = r.device().devid();
                    Device d = devices.require(container, devid);
                    if (!d.isPaused()) return r;   // its driver had not started it: nothing to wait for
                    p.step("await-driver");
                    try {
                        if (!awaitDriver(d, p, driverWait))
                            throw new OperationRefused(ProblemType.NOT_READY, "no driver gave the restored device " + devid + " its memory and"
                                    + " doorbells within " + driverWait.toSeconds() + " s; the device was removed again");
                    } catch (RuntimeException e) {
                        changes.apply(() -> {
                            devices.removeUnchecked(container, devid);
                            return new BusChanges.Outcome<>(null, null);
                        });
                        throw e;
                    }
                    return r;
                });
    }

    // ================================================================ a restore prepared ahead of the pause (migration)

    /** How long a completion's answer waits for the prepare operation to end (its driver back): bounded below any request timeout. */
    static final Duration COMPLETION_ANSWER_WAIT = Duration.ofSeconds(20);

    /** Restores prepared and not yet given up, by their operation's id: what a completion finds. */
    private final Map<String, Prepared> prepared = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * A device restored ahead from a state saved while it still ran at the source: the state and its JSON as they
     * came (what a completion patches), its checksum (what a completion names as its base), and whether it was
     * completed or given up, each once.
     */
    private static final class Prepared {
        final String container;
        final long devid;
        final DeviceState state;
        final JsonNode stateJson;
        final String checksum;
        final java.util.concurrent.CountDownLatch completed = new java.util.concurrent.CountDownLatch(1);
        boolean givenUp;   // guarded by this: the operation let its device go; no completion may take it now

        Prepared(String container, long devid, DeviceState state, JsonNode stateJson, String checksum) {
            this.container = container;
            this.devid = devid;
            this.state = state;
            this.stateJson = stateJson;
            this.checksum = checksum;
        }
    }

    /**
     * Prepares a restore for a migration, before the source pauses the device: as {@link #restoreAwaitingDriver}, from a
     * state the source saved while the device still ran (queues as placed, without their positions), answered once the
     * device exists here, paused and holding nothing. The operation then waits up to {@code wait} for the completion
     * ({@link #completeRestore}: the positions saved at the pause) and then up to {@code wait} for the driver, and
     * succeeds with the device still paused, for the source to start it; a device never completed (the source
     * failed, was cancelled, or lost us), or whose driver does not come, is removed again by the operation itself,
     * and so is one whose operation is cancelled. Nothing here ever starts it.
     */
    public OperationView prepareRestore(String container, JsonNode body, Duration wait) {
        if (wait.compareTo(Duration.ofSeconds(1)) < 0 || wait.compareTo(MAX_DRIVER_WAIT) > 0)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "prepare is 1.." + MAX_DRIVER_WAIT.toSeconds() + " seconds",
                    Map.of("field", "prepare"));
        RestoreRequest request = RestoreRequest.parse(body);
        SnapshotDocument.Read read = read(request);
        check(container, request, read, false);   // refuse at once what is wrong, before any operation exists
        JsonNode stateJson = request.snapshot().get("state");
        String base = request.snapshot().path("checksum").path("value").asString();   // read() checked it is the state's
        return operations.begin("restore", ContainerService.path(container)).runFirstHere(
                p -> {
                    RestoreResult r = restoreSteps(container, request, read, p, false);
                    prepared.put(p.id(), new Prepared(container, r.device().devid(), read.state(), stateJson, base));
                    return r;
                },
                (r, p) -> {
                    Prepared pr = prepared.get(p.id());
                    long devid = r.device().devid();
                    try {
                        p.step("await-completion");
                        if (!awaitCompletion(pr, p, wait))
                            throw new OperationRefused(ProblemType.NOT_READY, "the prepared device " + devid + " was not completed within "
                                    + wait.toSeconds() + " s (its source did not pause it and send its positions); it was removed again");
                        Device d = devices.require(container, devid);
                        p.step("await-driver");
                        if (!awaitDriver(d, p, wait))
                            throw new OperationRefused(ProblemType.NOT_READY, "no driver gave the restored device " + devid + " its memory and"
                                    + " doorbells within " + wait.toSeconds() + " s; the device was removed again");
                        return r;
                    } catch (RuntimeException e) {
                        synchronized (pr) {
                            pr.givenUp = true;   // a completion that comes now is refused: the device goes
                        }
                        changes.apply(() -> {
                            if (containers.require(container).contains(new DevId((int) devid))) devices.removeUnchecked(container, devid);
                            return new BusChanges.Outcome<>(null, null);
                        });
                        throw e;
                    } finally {
                        prepared.remove(p.id());
                    }
                });
    }

    /** Waits for a prepared device's completion, looking at the cancel request at least every {@link Operations#POLL}. */
    private static boolean awaitCompletion(Prepared pr, Operations.Progress p, Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        while (true) {
            p.checkpoint();
            long left = deadline - System.nanoTime();
            if (left <= 0) return pr.completed.getCount() == 0;
            try {
                if (pr.completed.await(Math.min(left, Operations.POLL.toNanos()), java.util.concurrent.TimeUnit.NANOSECONDS)) return true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Operations.Cancelled();
            }
        }
    }

    /**
     * Completes a prepared restore ({@link #prepareRestore}) with what the source saved at its pause, and answers once
     * its driver is back (the device paused, ready for the source to start it), or its operation ended without that,
     * or {@link #COMPLETION_ANSWER_WAIT} passed (still running: the operation's end comes on the event stream). Refused, and the device left as it
     * was, when the completion is for another operation or device, for another prepared state (stale base), does not
     * match its checksum once patched, or changes what a restored device cannot take without its driver
     * renegotiating (status, features, parameters, the limit).
     */
    public Completed completeRestore(String container, long devid, JsonNode body) {
        RestoreCompletion c = RestoreCompletion.parse(body);
        Prepared pr = prepared.get(c.operation());
        if (pr == null)
            throw new OperationRefused(ProblemType.NOT_READY, "no restore prepared as operation '" + c.operation() + "' waits here for its"
                    + " completion (it ended, was given up, or never was)", Map.of("field", "operation"));
        if (!pr.container.equals(container) || pr.devid != devid)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "operation " + c.operation() + " prepared device " + pr.devid
                    + " in container '" + pr.container + "', not device " + devid + " in '" + container + "'", Map.of("field", "operation"));
        if (!pr.checksum.equalsIgnoreCase(c.base()))
            throw new OperationRefused(ProblemType.REFUSED, "stale completion: it changes a state with checksum " + c.base()
                    + ", but operation " + c.operation() + " prepared the device from " + pr.checksum, Map.of("field", "base"));
        JsonNode later = RestoreCompletion.apply(pr.stateJson, c.changes());
        String actual = SnapshotDocument.checksum(later);
        if (!actual.equalsIgnoreCase(c.checksum()))
            throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, "the checksum does not match the completed state ("
                    + SnapshotDocument.ALGORITHM + " " + actual + "): the completion was changed or damaged after it was written",
                    Map.of("where", "/checksum/value"));
        DeviceState s = SnapshotDocument.decodeState(later, changes.bus().models(), "/changes", "(the source)");
        List<String> changed = new ArrayList<>();
        if (s.limit() != pr.state.limit()) changed.add("the feature limit");
        if (!s.params().equals(pr.state.params())) changed.add("the parameters");
        if (s.status() != pr.state.status()) changed.add("the status");
        if (s.negotiated() != pr.state.negotiated()) changed.add("the negotiated features");
        if (!changed.isEmpty())
            throw new OperationRefused(ProblemType.REFUSED, "stale completion: " + String.join(", ", changed) + " changed since the state the"
                    + " device was prepared from was saved; a restored driver does not renegotiate, so migrate it again", Map.of("field", "changes"));
        Device d = devices.require(container, devid);
        synchronized (pr) {
            if (pr.givenUp)
                throw new OperationRefused(ProblemType.NOT_READY, "operation " + c.operation() + " gave its prepared device up already",
                        Map.of("field", "operation"));
            if (pr.completed.getCount() == 0)
                throw new OperationRefused(ProblemType.REFUSED, "operation " + c.operation() + "'s device was completed already",
                        Map.of("field", "operation"));
            try {
                // A device its driver had not started was restored ready for a driver (it does not wait paused): with
                // nothing of a data path to carry on, there is nothing to complete, and a change means its driver acted.
                if (new DeviceStatus(pr.state.status()).isLive()) d.completeRestore(s);
                else if (!c.changes().isEmpty())
                    throw new DeviceException(d.devid(), "stale: the driver changed a device it had not started after its state was saved");
            } catch (DeviceException e) {
                throw new OperationRefused(ProblemType.REFUSED, e.getMessage(), Map.of("field", "changes"));
            }
            pr.completed.countDown();
        }
        // The driver is usually on its way already (told with the completion): this thread waits for it itself, as the
        // operation's does, so the answer leaves without a hand-off to another thread and back (each a wait for a core
        // on a loaded machine). Answered once the device is ready to resume (the operation ends as succeeded just after;
        // a start that comes before that end finds the device ready all the same), else once the operation ended.
        long deadline = System.nanoTime() + COMPLETION_ANSWER_WAIT.toNanos();
        long promptUntil = System.nanoTime() + PROMPT_DRIVER_WAIT.toNanos();
        while (System.nanoTime() - deadline < 0) {
            OperationView v = operations.show(c.operation());
            if (v.state().finished()) return new Completed(v.state() == OperationView.State.SUCCEEDED, v);
            if (d.readyToResume()) return new Completed(true, v);
            if (System.nanoTime() - promptUntil < 0) {
                java.util.concurrent.locks.LockSupport.parkNanos(250_000);
            } else {
                try {
                    v = operations.awaitEnd(c.operation(), Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return new Completed(v.state() == OperationView.State.SUCCEEDED, v);
            }
        }
        OperationView v = operations.show(c.operation());
        return new Completed(v.state() == OperationView.State.SUCCEEDED, v);
    }

    /**
     * A completion's answer: whether the driver is back on the completed device (it waits paused, ready to be
     * resumed), and the prepare operation as it is now (it succeeds just after the driver is back; it says why when
     * it failed).
     */
    public record Completed(boolean driverBack, OperationView operation) { }

    /** The state of a running device as far as it can be saved without pausing it (a migration's preparation). */
    static DeviceState saveAhead(Device d) {
        try {
            return withMac(d, d.saveAhead());
        } catch (DeviceException e) {
            throw new OperationRefused(ProblemType.REFUSED, "device " + d.devid() + " could not be saved: " + e.getMessage());
        }
    }

    /** Waits for a restored device's driver: every quarter millisecond at first, then as any operation waits. */
    private static boolean awaitDriver(Device d, Operations.Progress p, Duration wait) {
        long now = System.nanoTime();
        long deadline = now + wait.toNanos();
        long promptUntil = now + Math.min(wait.toNanos(), PROMPT_DRIVER_WAIT.toNanos());
        while (System.nanoTime() - promptUntil < 0) {
            p.checkpoint();
            if (d.readyToResume()) return true;
            java.util.concurrent.locks.LockSupport.parkNanos(250_000);
        }
        long left = deadline - System.nanoTime();
        return left > 0 && p.await(d::readyToResume, Duration.ofNanos(left)) || d.readyToResume();
    }

    /** A restore's steps, in its operation; {@code record}: write the store now (else the caller does, before it succeeds). */
    private RestoreResult restoreSteps(String container, RestoreRequest request, SnapshotDocument.Read read, Operations.Progress p, boolean record) {
        p.step("restore");
        Checked[] done = new Checked[1];
        java.util.function.Supplier<BusChanges.Outcome<DeviceView>> change = () -> {
            Checked c = check(container, request, read, false);   // again, inside the door: the bus may have changed
            Device d;
            try {
                d = containers.require(container).restoreDevice(c.state(), c.limit());
            } catch (FeatureNegotiationException e) {
                List<String> names = changes.bus().models().model(c.state().type()).orElseThrow().features().names(e.outside());
                throw notNegotiable(c.state().type(), e.getMessage(), names, names, List.of());
            } catch (BusException e) {
                // A devid used before and removed is still taken (devids are never reused); else the model refused its parameters.
                throw e.getMessage() != null && e.getMessage().contains("in use")
                        ? new OperationRefused(ProblemType.NAME_TAKEN, e.getMessage(), Map.of("field", "devid"))
                        : new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(), Map.of("where", request.snapshotAt() + "/state/device/params"));
            } catch (DeviceException e) {
                throw new OperationRefused(ProblemType.MALFORMED_DOCUMENT, e.getMessage(), Map.of("where", request.snapshotAt() + "/state"));
            }
            // A device its driver had not started has no data path to wait for: it is ready for a driver now
            // (left paused, a driver's DRIVER_OK would start a data path a later pause believed stopped).
            if (!new DeviceStatus(c.state().status()).isLive()) d.resume();
            done[0] = c;
            return new BusChanges.Outcome<>(DeviceService.view(d), null);   // the container's DeviceAdded is forwarded
        };
        DeviceView made = record ? changes.apply(change) : changes.applyUnrecorded(change);
        RestoreRequest.Overrides o = done[0].overrides();
        if (o.vhostUserSocket() != null) {
            p.step("expose");
            Device d = devices.require(container, made.devid());
            try {
                vhostUser.serve(d, o.vhostUserSocket());
            } catch (RuntimeException e) {
                // All or nothing: a restore whose exposure fails leaves no device behind.
                changes.apply(() -> {
                    devices.removeUnchecked(container, made.devid());
                    return new BusChanges.Outcome<>(null, null);
                });
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "cannot serve the restored device on vhost-user at "
                        + o.vhostUserSocket() + ": " + e.getMessage() + "; the device was removed again",
                        Map.of("where", "/overrides/vhostUser/socket"));
            }
        }
        if (o.tap() != null) {
            p.step("attach-tap");
            try {
                networks.attachPort(container, networkOf(container, made.devid()), o.tap());
            } catch (RuntimeException e) {
                // All or nothing, as for the socket: the device (and any exposure made for it) goes again.
                changes.apply(() -> {
                    devices.removeUnchecked(container, made.devid());
                    return new BusChanges.Outcome<>(null, null);
                });
                Map<String, Object> where = Map.of("where", "/overrides/tap");
                throw e instanceof OperationRefused r
                        ? new OperationRefused(r.type(), r.getMessage() + "; the restored device was removed again", where)
                        : new OperationRefused(ProblemType.REFUSED, "cannot attach the TAP port for the restored device: " + e.getMessage()
                                + "; the device was removed again", where);
            }
        }
        return new RestoreResult(done[0].plan(), devices.show(container, made.devid()));
    }

    /** The network the device's switch port is on (a net device joins it when it is made). */
    private String networkOf(String container, long devid) {
        Networks n = Networks.of(containers.require(container));
        return n.names().stream().filter(net -> n.devicePort(net, devid).isPresent()).findFirst()
                .orElseThrow(() -> new OperationRefused(ProblemType.INVALID_PARAMETER, "device " + devid
                        + " is on no network: a TAP port cannot reach it", Map.of("where", "/overrides/tap")));
    }

    /** What a restore returns: what it did and the device as it is now. */
    public record RestoreResult(RestorePlan plan, DeviceView device) { }

    /**
     * The document read and verified (checksum, versions, the state decoded): once per request. It depends on the
     * document and this bus's models alone, which do not change while the app runs; what depends on the bus is
     * {@link #check}ed again inside the door.
     */
    private SnapshotDocument.Read read(RestoreRequest request) {
        return SnapshotDocument.read(request.snapshot(), changes.bus().models(), request.snapshotAt());
    }

    /** Every check of a restore, in the order a person fixes them; returns the plan. */

    private Checked check(String container, RestoreRequest request, SnapshotDocument.Read read, boolean dryRun) {
        DeviceState s = read.state();
        RestoreRequest.Overrides o = request.overrides();
        Container c = containers.require(container);
        DeviceModel model = changes.bus().models().model(s.type()).orElseThrow();   // the document's read checked it
        FeatureCatalog catalog = model.features();
        long devid = Integer.toUnsignedLong(s.devid());
        if (s.devid() == 0 || c.contains(new DevId(s.devid())))
            throw new OperationRefused(ProblemType.NAME_TAKEN, "container '" + container + "' already has a device " + devid
                    + "; a restored device keeps its devid (its guest knows it by that)", Map.of("field", "devid"));
        if (c.devices().size() >= c.deviceLimit())
            throw new OperationRefused(ProblemType.LIMIT_REACHED, "container '" + container + "' already has its limit of "
                    + c.deviceLimit() + " devices");
        long limit = o.limit() == null ? s.limit() : o.limit().mask(s.type(), catalog);
        checkFeatures(s, catalog, limit, request.snapshot().path("device").path("features").path("negotiated"));
        Map<String, String> params = new TreeMap<>(s.params());
        if (o.network() != null) params.put("network", o.network());
        String network = params.get("network");
        if (network != null && Networks.of(c).network(network).isEmpty())
            throw new OperationRefused(ProblemType.NO_SUCH_NETWORK, "the device joins network '" + network + "', which container '"
                    + container + "' does not have (it has " + Networks.of(c).names() + "); create it, or give overrides.network",
                    Map.of("field", o.network() != null ? "overrides.network" : "parameters.network"));
        List<String> exposures = new ArrayList<>();
        if (o.vhostUserSocket() != null) {
            if (model.virtioDeviceId() == 0)
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, s.type() + " is not a virtio device; vhost-user cannot serve it",
                        Map.of("where", "/overrides/vhostUser"));
            exposures.add("vhost-user server on " + o.vhostUserSocket());
        }
        if (o.tap() != null) {
            NetworkService.namespace(o.tap().namespace(), Map.of("where", "/overrides/tap/namespace"));
            exposures.add("TAP " + o.tap().ifname() + " in network namespace " + o.tap().namespace() + " on the device's network"
                    + (network != null ? " (" + network + ")" : ""));
        }
        DeviceState restored = new DeviceState(s.type(), s.devid(), s.status(), s.limit(), s.negotiated(), s.config(), s.queues(),
                params, s.model());
        boolean live = new DeviceStatus(s.status()).isLive();
        RestorePlan plan = new RestorePlan(dryRun, container, devid, s.type(), read.writtenBy(), version.version(),
                request.snapshot().path("state").path("version").asInt(), s.model().schema().toString(),
                DeviceStatus.names(s.status()), catalog.names(s.negotiated()), catalog.names(catalog.mask() & ~limit),
                new LinkedHashMap<>(params), exposures,
                live ? "the device waits paused for its driver to share its memory and doorbells again; then resume it"
                        + " (POST " + ContainerService.path(container) + "/devices/" + devid + "/resume)"
                        : "the device is ready for a driver (its driver had not started it when it was saved)");
        return new Checked(plan, restored, limit, o);
    }

    /**
     * The features the restored driver goes on using must be inside what this bus's model offers and
     * inside the operator limit: the negotiated set once FEATURES_OK was set; before that, after
     * DRIVER, the offer the driver may be reading. Refused naming each feature and why.
     */
    private static void checkFeatures(DeviceState s, FeatureCatalog catalog, long limit, JsonNode documentNames) {
        DeviceStatus status = new DeviceStatus(s.status());
        long relied = status.has(DeviceStatus.FEATURES_OK) ? s.negotiated()
                : status.has(DeviceStatus.DRIVER) ? s.limit() & catalog.mask() : 0;
        long notOffered = relied & ~catalog.mask();
        long limited = relied & catalog.mask() & ~limit;
        if ((notOffered | limited) == 0) return;
        java.util.function.LongFunction<List<String>> names = bits -> names(bits, catalog, s.negotiated(), documentNames);
        List<String> all = names.apply(notOffered | limited);
        throw notNegotiable(s.type(), "the saved driver relies on " + String.join(", ", all) + ": "
                + (notOffered != 0 ? names.apply(notOffered) + " this bus's " + s.type() + " does not offer" : "")
                + (notOffered != 0 && limited != 0 ? "; " : "")
                + (limited != 0 ? names.apply(limited) + " the operator limit takes away" : "")
                + "; a restored driver does not renegotiate, so the device cannot be restored here", all,
                names.apply(notOffered), names.apply(limited));
    }

    /**
     * Names of {@code bits}: this bus's, else the document's (a feature this bus's model does not have, as a
     * bus of an older version, or one whose operator withheld it, still has the name the source wrote, in the
     * same order as the negotiated bits), else {@code bit<N>}.
     */
    private static List<String> names(long bits, FeatureCatalog catalog, long negotiated, JsonNode documentNames) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            if ((bits & (1L << i)) == 0) continue;
            String name = catalog.byBit(i).map(dev.jvbus.core.feature.FeatureBit::name).orElse(null);
            if (name == null && (negotiated & (1L << i)) != 0 && documentNames.isArray()
                    && documentNames.size() == Long.bitCount(negotiated)) {
                JsonNode n = documentNames.get(Long.bitCount(negotiated & ((1L << i) - 1)));
                if (n.isString() && !n.asString().isBlank()) name = n.asString();
            }
            out.add(name != null ? name : "bit" + i);
        }
        return out;
    }

    private static OperationRefused notNegotiable(String type, String detail, List<String> all, List<String> notOffered, List<String> limited) {
        return new OperationRefused(ProblemType.FEATURE_NOT_NEGOTIABLE, detail,
                Map.of("features", all, "notOffered", notOffered, "limited", limited));
    }

    // ================================================================ resume

    /**
     * Lets a paused device run: once its driver holds it again and gave every queue its doorbells
     * (after a restore), at once otherwise. Waits at most {@code driverWait} for the driver.
     */
    public OperationView resume(String container, long devid, Duration driverWait) {
        checkDriverWait(driverWait);
        return holding("resume", container, devid, (d, p) -> {
            start(d, p, container, devid, driverWait);
            return record(d, container, devid);
        });
    }

    /**
     * As {@link #resume(String, long, Duration)}, answered once the device runs (its operation then writes the
     * store and succeeds), or once the operation ended otherwise: what a migrating bus asks, whose device does
     * not serve until it learns this. The answer says so itself: asking again, or waiting for the operation's
     * events, would each cost another round trip while the guest waits; and the device is started on the
     * request's own thread, which waits for it anyway.
     */
    public OperationView resumeAnsweringWhenRunning(String container, long devid, Duration driverWait) {
        checkDriverWait(driverWait);
        return holdingFirstHere("resume", container, devid, (d, p) -> {
            start(d, p, container, devid, driverWait);
            return d;
        }, (d, p) -> record(d, container, devid));
    }

    private static void checkDriverWait(Duration driverWait) {
        if (driverWait.isNegative() || driverWait.compareTo(MAX_DRIVER_WAIT) > 0)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "the driver wait is 0.." + MAX_DRIVER_WAIT.toSeconds() + " seconds",
                    Map.of("field", "driver-timeout"));
    }

    /** A resume's steps up to the device running: its driver awaited, the device resumed, the step {@code record} begun. */
    private static void start(Device d, Operations.Progress p, String container, long devid, Duration driverWait) {
        p.step("await-driver");
        if (!p.await(d::readyToResume, driverWait))
            throw new OperationRefused(ProblemType.NOT_READY, "no driver gave device " + devid + " in container '" + container
                    + "' its memory and doorbells within " + driverWait.toSeconds() + " s; connect its driver (an shm client"
                    + " opens it and shares its memory and doorbells again) and resume again");
        p.step("resume");
        try {
            d.resume();
        } catch (DeviceException e) {
            throw new OperationRefused(ProblemType.REFUSED, e.getMessage());
        }
        // The device runs from here on (a migration's source takes this step as the end of its downtime);
        // the store, which a migration's restore left unwritten, is written before the operation succeeds.
        p.step("record");
    }

    /**
     * The store written after a resume. A store that cannot be written does not undo a device that runs (its
     * driver uses it already): the bus stays as it is, says so, and the store catches up at the next change that writes it.
     */
    private DeviceView record(Device d, String container, long devid) {
        try {
            changes.record();
        } catch (RuntimeException e) {
            java.util.logging.Logger.getLogger(SnapshotService.class.getName()).log(java.util.logging.Level.WARNING,
                    "device " + devid + " in container '" + container + "' runs, but the store could not be written", e);
        }
        return DeviceService.view(d);
    }

    // ================================================================ shared

    /** What an operation on one held device does. */
    @FunctionalInterface
    interface DeviceWork {
        Object run(Device device, Operations.Progress progress) throws Exception;
    }

    /**
     * Starts an operation of {@code kind} that holds the device from now until it ends, so nothing
     * unplugs, snapshots or migrates it meanwhile; refused at once (DEVICE_BUSY) if another holds it.
     */
    OperationView holding(String kind, String container, long devid, DeviceWork work) {
        Held held = hold(kind, container, devid);
        return held.op().run(p -> {
            try (BusChanges.Hold h = held.hold()) {
                return work.run(held.device(), p);
            }
        });
    }

    /** The part of an operation on a held device that {@link #holdingFirstHere} runs on the caller's thread. */
    @FunctionalInterface
    interface FirstDeviceWork {
        Device run(Device device, Operations.Progress progress) throws Exception;
    }

    /**
     * As {@link #holding}, with the operation's first part run on the caller's thread ({@link Operations.Pending#runFirstHere})
     * and answered after it; the device is held until the rest ends (or the first part fails).
     */
    OperationView holdingFirstHere(String kind, String container, long devid, FirstDeviceWork first, DeviceWork rest) {
        Held held = hold(kind, container, devid);
        return held.op().runFirstHere(p -> {
            try {
                return first.run(held.device(), p);
            } catch (Exception | Error e) {
                held.hold().close();
                throw e;
            }
        }, (d, p) -> {
            try (BusChanges.Hold h = held.hold()) {
                return rest.run(d, p);
            }
        });
    }

    private record Held(Device device, Operations.Pending op, BusChanges.Hold hold) { }

    private Held hold(String kind, String container, long devid) {
        Device d = devices.require(container, devid);
        String subject = ContainerService.path(container) + "/devices/" + devid;
        Operations.Pending op = operations.begin(kind, subject);
        try {
            return new Held(d, op, changes.hold(container, devid, op.id()));
        } catch (RuntimeException e) {
            op.abandon();
            throw e;
        }
    }
}
