package dev.jvbus.core.bus;

import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.FeatureNegotiation;
import dev.jvbus.core.feature.FeatureView;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.ConfigSpace;
import dev.jvbus.core.spi.DataPathRun;
import dev.jvbus.core.spi.ContainerResource;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.sys.EventFd;
import java.util.ArrayList;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * One device in a container: an instance of a {@link DeviceModel} with a devid, the virtio-style
 * status machine, feature negotiation, config space and at most one attached driver.
 *
 * <p>The driver acts through its {@link Attachment}; the operator acts on the device itself
 * (features, limit, save/restore). All control-plane methods lock the device; the data path
 * (rings) never goes through this lock. The data path reports faults through the {@link DataPathRun}
 * of the run it serves, which takes this lock on a thread of its own and only while that run is
 * current: control methods wait for data-path threads while holding the lock (pause, reset).
 */
public final class Device {
    private static final Logger LOG = Logger.getLogger(Device.class.getName());
    private final DevId devid;
    private final String container;
    private final DeviceModel model;
    private final FeatureNegotiation features;
    private final FeatureCatalog catalog;   // the model's offer for this device's parameters (refusals name bits by the model's whole catalog)
    private final ConfigSpace config;
    private final DeviceFunction function;
    private final Consumer<Device> onNeedsReset;
    private final ContainerResources resources;   // the container's, shared with its other devices
    private final Map<String, String> params;

    // What the driver set up for the data path. Memory and doorbells belong to the connector
    // (it maps and closes them); the device only holds references while the driver is attached.
    private GuestMemory memory = GuestMemory.empty();
    private final QueueLayout queues;   // the model's, sized by this device's parameters
    private final QueueSlot[] slots;   // one per queue of that layout

    private int status;
    private boolean running;   // the function's data path was started and not reset since
    private boolean paused;
    private boolean removed;
    private String needsResetReason;
    private Attachment attachment;
    // The data path's run: bumped when it starts and when it stops, so a run's handle knows it ended.
    // Written under this lock, read by data-path threads.
    private volatile int run;
    private long lateFaultsIgnored;   // under this
    private long starts, stops, pauses, queueStops, queueStarts, callsReplaced;   // under this: see dataPathEvents()

    Device(DevId devid, String container, DeviceModel model, long featureLimit, Map<String, String> params, Consumer<Device> onNeedsReset,
           ContainerResources resources) {
        this.params = Map.copyOf(params);
        this.resources = Objects.requireNonNull(resources);
        this.devid = Objects.requireNonNull(devid);
        this.container = Objects.requireNonNull(container);
        this.model = Objects.requireNonNull(model);
        this.catalog = model.features(this.params);
        this.features = new FeatureNegotiation(catalog);
        this.features.setLimit(featureLimit);
        logWithdrawn();
        this.config = new ConfigSpace(model.config());
        this.onNeedsReset = onNeedsReset == null ? d -> { } : onNeedsReset;
        this.queues = model.queues(this.params);
        int n = queues.count();
        this.slots = new QueueSlot[n];
        for (int i = 0; i < n; i++) slots[i] = new QueueSlot(queues.queue(i), i);
        this.function = Objects.requireNonNull(model.create(new Context()), "model " + model.type() + " created no function");
    }

    /** Creates a device. Containers call this; it is public so tests and tools can build one alone. */
    public static Device create(DevId devid, String container, DeviceModel model, long featureLimit, Map<String, String> params) {
        // A device alone has container resources of its own: it shares nothing with any other device.
        return new Device(devid, container, model, featureLimit, params, null, new ContainerResources(container));
    }

    static Device create(DevId devid, String container, DeviceModel model, long featureLimit, Map<String, String> params,
                         Consumer<Device> onNeedsReset, ContainerResources resources) {
        return new Device(devid, container, model, featureLimit, params, onNeedsReset, resources);
    }

    /** The operator's parameters the device was created with. */
    public Map<String, String> params() { return params; }

    public DevId devid() { return devid; }

    public String container() { return container; }

    public DeviceModel model() { return model; }

    /** This device's queues: the model's layout with the sizes its parameters gave (see {@link DeviceModel#queues(Map)}). */
    public QueueLayout queues() { return queues; }

    public String type() { return model.type(); }

    /** What this device can offer: the model's features for the parameters it was created with ({@link DeviceModel#features(Map)}). */
    public FeatureCatalog featureCatalog() { return catalog; }

    /** Its container's exposures, where a connector registers what makes this device reachable. */
    public Exposures exposures() { return resources.exposures(); }

    public synchronized DeviceStatus status() { return new DeviceStatus(status); }

    /** Why the device asked for a reset, if it did. */
    public synchronized Optional<String> needsResetReason() { return Optional.ofNullable(needsResetReason); }

    /**
     * Faults the data path reported for a run that had ended by the time the report landed (the
     * driver reset or restarted meanwhile), so they were not held against the current session.
     */
    public synchronized long lateFaultsIgnored() { return lateFaultsIgnored; }

    public synchronized FeatureView features() { return features.view(); }

    /**
     * Operator: limit what is offered to {@code mask} (bits the model never offers are harmless in it,
     * so "allow all" is -1). Applies from the next negotiation; a driver mid-session keeps its set.
     */
    public synchronized void limitFeatures(long mask) {
        features.setLimit(mask);
        logWithdrawn();
    }

    /**
     * The features the operator's limit took out of the offer without naming them, each with the requirement
     * it lost (CTRL_RX when CTRL_VQ is limited): the offer never has a feature without what it requires.
     */
    public synchronized List<dev.jvbus.core.feature.FeatureWithdrawal> withdrawnFeatures() {
        return features.withdrawn();
    }

    /** Says which features the limit took out of the offer without naming them, and why; returns them. */
    private List<dev.jvbus.core.feature.FeatureWithdrawal> logWithdrawn() {
        List<dev.jvbus.core.feature.FeatureWithdrawal> w = features.withdrawn();
        if (!w.isEmpty())
            LOG.info(() -> "device " + container + "/" + devid + " (" + model.type() + "): the feature limit also withdraws "
                    + w + ": each requires a feature the limit took away");
        return w;
    }

    public synchronized byte[] configSnapshot() { return config.snapshot(); }

    public synchronized Optional<String> holder() {
        return attachment == null ? Optional.empty() : Optional.of(attachment.holder());
    }

    public synchronized boolean isRemoved() { return removed; }

    /**
     * A driver takes the device. One driver at a time; the device starts from reset.
     *
     * @throws DeviceBusyException if another driver holds it
     * @throws DeviceException if it was removed
     */
    public synchronized Attachment attach(String holder, DeviceObserver observer) {
        if (removed) throw new DeviceException(devid, "device was removed");
        if (attachment != null) throw new DeviceBusyException(devid, attachment.holder());
        attachment = new Attachment(this, holder, observer == null ? DeviceObserver.NONE : observer);
        return attachment;
    }

    // ---- driver side, called through Attachment ----

    synchronized void writeStatus(Attachment a, int value) {
        checkHolder(a);
        DeviceStatus from = new DeviceStatus(status);
        switch (from.next(value, features.acked() & ~features.offered(), unmetRequirement())) {
            case StatusTransition.Reset _ -> resetLocked();
            case StatusTransition.Refused r -> throw refusal(from, value, r);
            case StatusTransition.Apply t -> {
                if (t.stopDataPath()) stopDataPathLocked();
                if (t.acceptFeatures()) features.accept();   // inside the offer: decided by next()
                if (t.startDataPath()) {
                    status = t.status() & ~DeviceStatus.DRIVER_OK;
                    try {
                        startLocked();
                    } catch (DeviceFault | RuntimeException e) {
                        markNeedsResetLocked("start failed: " + e.getMessage());
                        throw new DeviceException(devid, "DRIVER_OK refused: " + e.getMessage(), e);
                    }
                }
                status = t.status();
                if (t.rest().isPresent()) throw refusal(from, value, t.rest().get());
            }
        }
    }

    private DeviceException refusal(DeviceStatus from, int value, StatusTransition.Refused r) {
        return switch (r.rule()) {
            case FEATURES_NOT_OFFERED -> {
                long outside = features.acked() & ~features.offered();
                yield new FeatureNegotiationException(devid, outside, model.features().names(outside), "FEATURES_OK refused");
            }
            case FEATURE_REQUIREMENT_MISSING -> {
                long bits = 0;
                for (dev.jvbus.core.feature.FeatureRequirement q : features.unmetRequirements()) bits |= q.feature().mask() | q.anyOfMask();
                yield new FeatureNegotiationException(devid, bits, r.reason());
            }
            case DEVICE_NEEDS_RESET -> new IllegalStatusTransitionException(devid, from, value, r.reason() + " (" + needsResetReason + ")");
            default -> new IllegalStatusTransitionException(devid, from, value, r.reason());
        };
    }

    /** The first requirement the acked features break, in words naming both features and their bits; null if none. */
    private String unmetRequirement() {
        List<dev.jvbus.core.feature.FeatureRequirement> unmet = features.unmetRequirements();
        return unmet.isEmpty() ? null : describe(unmet);
    }

    private static String describe(List<dev.jvbus.core.feature.FeatureRequirement> unmet) {
        dev.jvbus.core.feature.FeatureRequirement q = unmet.getFirst();
        return q.feature() + " was acked without " + String.join(" or ", q.anyOf().stream().map(Object::toString).toList())
                + ", which it requires (virtio 1.x 5.1.3.1)" + (unmet.size() > 1 ? "; also " + unmet.subList(1, unmet.size()) : "");
    }

    synchronized long offeredFeatures(Attachment a) {
        checkHolder(a);
        return features.offered();
    }

    synchronized void ackFeatures(Attachment a, long bits, boolean wholeSet) {
        checkHolder(a);
        DeviceStatus s = new DeviceStatus(status);
        if (!s.has(DeviceStatus.DRIVER) || s.has(DeviceStatus.FEATURES_OK))
            throw new IllegalStatusTransitionException(devid, s, status,
                    "features are acked after DRIVER and before FEATURES_OK");
        if (wholeSet) features.ack(bits);
        else features.ackServed(bits);
    }

    synchronized void resumeDriver(Attachment a, long negotiated) {
        checkHolder(a);
        int to = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;
        if (status != 0)
            throw new IllegalStatusTransitionException(devid, new DeviceStatus(status), to, "a driver resumes a fresh device (status 0): reset it first");
        // What a restore takes (restore(DeviceState)): the offer, and what the model honours in a saved driver.
        long honoured = model.featuresHonouredOnRestore(params) & features.limit();
        long outside = negotiated & ~(features.offered() | honoured);
        if (outside != 0)
            throw new FeatureNegotiationException(devid, outside, "this device does not offer " + model.features().names(outside) + " (0x"
                    + Long.toHexString(outside) + "; it offers 0x" + Long.toHexString(features.offered()) + ")");
        // The requirements of the model's whole catalog: an honoured feature's too (MQ requires CTRL_VQ), which this
        // device's own catalog no longer names. A driver that broke one never had the set from any bus.
        List<dev.jvbus.core.feature.FeatureRequirement> unmet = model.features().unmet(negotiated);
        if (!unmet.isEmpty()) {
            long bits = 0;
            for (dev.jvbus.core.feature.FeatureRequirement q : unmet) bits |= q.feature().mask() | q.anyOfMask();
            throw new FeatureNegotiationException(devid, bits, describe(unmet));
        }
        features.impose(negotiated, honoured);   // inside offer and honoured: checked above
        status = to;
    }

    synchronized byte[] readConfig(Attachment a, int offset, int length) {
        checkHolder(a);
        try {
            return config.read(offset, length);
        } catch (IndexOutOfBoundsException e) {
            throw new DeviceException(devid, e.getMessage());
        }
    }

    synchronized int configGeneration(Attachment a) {
        checkHolder(a);
        return config.generation();
    }

    synchronized void writeConfig(Attachment a, int offset, byte[] data) {
        checkHolder(a);
        if (!model.config().driverMayWrite(offset, data.length))
            throw new DeviceException(devid, "config bytes [" + offset + ", +" + data.length + ") are not driver-writable");
        config.write(offset, data);
        function.configWritten(offset, data.length);
    }

    synchronized byte[] call(Attachment a, int func, byte[] payload) throws DeviceFault {
        checkHolder(a);
        return function.call(func, payload);
    }

    synchronized void announce(Attachment a, byte[] address) throws DeviceFault {
        checkHolder(a);
        // What the device announces from depends on what was negotiated (its MAC, the rings it sends with):
        // a front-end that has not settled the features has no guest to announce yet.
        if (!features.accepted())
            throw new DeviceException(devid, "announce refused: the features are not negotiated yet (FEATURES_OK)");
        function.announce(address.clone());
    }

    synchronized void setMemory(Attachment a, GuestMemory m) {
        checkHolder(a);
        // A live device whose queues are all stopped (each alone) takes new memory: the queues it starts next use it.
        for (QueueSlot s : slots)
            if (running && s.started)
                throw new DeviceException(devid, "memory cannot change while the data path runs; stop its queues or reset the device first");
        memory = java.util.Objects.requireNonNull(m);
    }

    synchronized GuestMemory memory(Attachment a) {
        checkHolder(a);
        return memory;
    }

    synchronized void setQueue(Attachment a, QueueConfig q, QueueState resume) {
        checkHolder(a);
        QueueSlot s = slot(q.index());
        if (running || new DeviceStatus(status).has(DeviceStatus.DRIVER_OK))
            throw new DeviceException(devid, "queue " + q.index() + " is set up before DRIVER_OK, not after");
        checkPlacement(s, q, resume);
        s.config = q;
        s.enabled = true;
        s.resumeFrom = resume;
    }

    /** The one check of a queue's placement and the position it resumes from, before DRIVER_OK or at a queue's own start. */
    private void checkPlacement(QueueSlot s, QueueConfig q, QueueState resume) {
        QueueSpec spec = s.spec;
        if (!spec.accepts(q.size()))
            throw new DeviceException(devid, "queue " + q.index() + " (" + spec.name() + ") size " + q.size()
                    + " must be " + spec.sizeRule());
        if (resume != null && (resume.index() != q.index() || resume.size() != q.size() || resume.descAddr() != q.descAddr()
                || resume.availAddr() != q.availAddr() || resume.usedAddr() != q.usedAddr() || resume.kind() != spec.kind()))
            throw new DeviceException(devid, "queue " + q.index() + ": the position to resume from describes another ring");
    }

    synchronized void setDoorbells(Attachment a, int index, EventFd kick, Notifier call) {
        checkHolder(a);
        QueueSlot s = slot(index);
        if (running) throw new DeviceException(devid, "queue " + index + " doorbells are set before DRIVER_OK");
        s.kick = java.util.Objects.requireNonNull(kick, "kick");
        s.call = java.util.Objects.requireNonNull(call, "call");
    }

    synchronized void enableQueue(Attachment a, int index, boolean enable) {
        checkHolder(a);
        QueueSlot s = slot(index);
        if (running) throw new DeviceException(devid, "queue " + index + " is enabled before DRIVER_OK");
        if (enable && s.config == null) throw new DeviceException(devid, "queue " + index + " is not set up");
        s.enabled = enable;
    }

    synchronized void setInflightLog(Attachment a, int index, dev.jvbus.core.ring.virtio.SplitInflightLog log) {
        checkHolder(a);
        slot(index).inflight = log;
    }

    synchronized void setQueueActive(Attachment a, int index, boolean active) {
        checkHolder(a);
        slot(index).active = active;
        if (running) function.queueActive(index, active);
    }

    private QueueSlot slot(int index) {
        if (index < 0 || index >= slots.length)
            throw new DeviceException(devid, "no queue " + index + "; " + model.type() + " has " + slots.length);
        return slots[index];
    }

    private QueueSpec spec(int index) {
        return slot(index).spec;
    }

    /** DRIVER_OK, or resume after a restore: every queue the driver set up and enabled is to run. */
    private void startLocked() throws DeviceFault {
        for (QueueSlot s : slots) s.started = s.config != null && s.enabled;
        startDataPathLocked();
    }

    /** Builds the queue set from the started queues and starts the function. */
    private void startDataPathLocked() throws DeviceFault {
        List<QueueBinding> bindings = new ArrayList<>();
        for (QueueSlot s : slots) {
            if (!s.started) continue;
            if (s.kick == null)
                throw new DeviceFault("queue " + s.index + " (" + s.spec.name() + ") is set up but has no doorbells");
            bindings.add(s.binding(memory));
        }
        run++;                       // a new run: reports of earlier ones no longer count
        function.start(new QueueSet(memory, features.negotiated(), bindings, new Run(run)));
        running = true;
        starts++;
        for (QueueSlot s : slots) s.resumeFrom = null;
    }

    // ---- one queue at a time (virtio 1.2 VIRTIO_F_RING_RESET; vhost-user's per-ring stop and start) ----

    /**
     * Stops one queue while the device is live; the others keep running. A model that
     * {@linkplain DeviceFunction#resetsQueues() resets queues alone} stops just that one; for any
     * other the whole data path is quiesced, saved, stopped and started again with the remaining
     * queues (if every required one is among them), each from its saved position.
     *
     * @return the queue's position, or empty if it was not running (never started, stopped already,
     *         or the data path stopped for a fault)
     * @throws DeviceException if the queue did not stop cleanly: the device needs a reset
     */
    synchronized Optional<QueueState> stopQueue(Attachment a, int index) {
        checkHolder(a);
        QueueSlot s = slot(index);
        // A model that stops one queue alone does so inside an operator's pause too: the queue's position is as
        // stable then as while it runs, and its front-end must get that position (vhost-user's GET_VRING_BASE has no
        // error reply: a refusal would hand it a stale base, and leave the ring to run on after the resume). The
        // whole-device fallback would start the data path again, so it waits for the pause to end.
        if (!function.resetsQueues()) awaitUnpaused(a, index);
        requireLive(index);
        if (!s.started) return Optional.empty();
        s.started = false;
        queueStops++;
        if (!running) {                      // the fallback's data path waits for a required queue: the position is held here
            QueueState held = s.resumeFrom;
            s.resumeFrom = null;
            return Optional.ofNullable(held);
        }
        if (function.resetsQueues()) {
            try {
                QueueState stopped = function.stopQueue(index);
                s.counters.detach();
                return Optional.of(stopped);
            } catch (DeviceFault | RuntimeException e) {
                throw queueChangeFailed("queue " + index + " did not stop: " + e.getMessage(), e);
            }
        }
        QueueState mine = null;
        for (QueueState q : stopWholeDataPathLocked()) {
            if (q.index() == index) mine = q;
            else slots[q.index()].resumeFrom = q;
        }
        restartIfReadyLocked();
        return Optional.ofNullable(mine);
    }

    /**
     * Starts one queue while the device is live and the others run: placed at {@code q}, with its
     * doorbells, carrying on from {@code resume} (null: from zero). Through the model's own
     * {@link DeviceFunction#startQueue} when it resets queues alone, else the whole-device fallback.
     *
     * @throws DeviceException if the queue cannot run as placed: it stays stopped, the others run on
     */
    synchronized void startQueue(Attachment a, QueueConfig q, QueueState resume, EventFd kick, Notifier call) {
        checkHolder(a);
        QueueSlot s = slot(q.index());
        awaitUnpaused(a, q.index());   // a queue that started inside a pause would run while the device's state is saved
        requireLive(q.index());
        if (s.started) throw new DeviceException(devid, "queue " + q.index() + " runs; stop it first");
        checkPlacement(s, q, resume);
        s.config = q;
        s.enabled = true;
        s.resumeFrom = resume;
        s.kick = java.util.Objects.requireNonNull(kick, "kick");
        s.call = java.util.Objects.requireNonNull(call, "call");
        s.started = true;
        queueStarts++;
        if (running && function.resetsQueues()) {
            try {
                function.startQueue(s.binding(memory));
                s.resumeFrom = null;
            } catch (DeviceFault | RuntimeException e) {
                s.started = false;
                throw new DeviceException(devid, "queue " + q.index() + " cannot start: " + e.getMessage(), e);
            }
            return;
        }
        if (running) {
            for (QueueState saved : stopWholeDataPathLocked()) slots[saved.index()].resumeFrom = saved;
        }
        try {
            restartIfReadyLocked();
        } catch (DeviceException e) {
            // The new queue cannot run as placed: the others carry on without it, from where they were.
            s.started = false;
            s.resumeFrom = null;
            restartIfReadyLocked();
            throw e;
        }
    }

    /**
     * Re-points a queue's call doorbell (vhost-user SET_VRING_CALL). A running queue keeps running:
     * its next signal goes to {@code call}. The driver is signalled once on the new doorbell, since a
     * signal that went to the old one just before may never have been seen.
     */
    synchronized void replaceCall(Attachment a, int index, Notifier call) {
        checkHolder(a);
        QueueSlot s = slot(index);
        s.call = java.util.Objects.requireNonNull(call, "call");
        if (running && s.started && s.liveCall != null) {
            s.liveCall.swap(call);
            callsReplaced++;
            call.signal();
        }
    }

    /** Whether queue {@code index} runs now (the data path runs and the queue is started). */
    public synchronized boolean isQueueRunning(int index) {
        return running && slot(index).started;
    }

    /**
     * Queue {@code index}'s counters, for the device's life: the object metrics read (racily, without
     * any lock), the same one every ring of that queue counts into.
     */
    public QueueCounters queueCounters(int index) {
        return slot(index).counters;
    }

    /**
     * Every queue of the model's layout as it is now: whether it runs, where its ring is (as the device
     * sees it) and its counters. The counters and indices are read racily (each exact, the set not
     * atomic); only whether it runs is read under the device's lock.
     */
    public List<QueueStats> queueStats() {
        List<QueueStats> out = new ArrayList<>(slots.length);
        for (QueueSlot s : slots) {
            boolean runs;
            int configured;
            synchronized (this) {
                runs = running && s.started;
                configured = s.config == null ? 0 : s.config.size();
            }
            out.add(QueueStats.of(s.index, s.spec.name(), configured, runs, s.counters));
        }
        return out;
    }

    /**
     * How often the data path was started, stopped and paused as a whole, and single queues stopped
     * and started or their call doorbell re-pointed, since the device was created. For operators and
     * tests: a connector that changes one queue must not touch the others.
     */
    public record DataPathEvents(long starts, long stops, long pauses, long queueStops, long queueStarts, long callsReplaced) { }

    public synchronized DataPathEvents dataPathEvents() {
        return new DataPathEvents(starts, stops, pauses, queueStops, queueStarts, callsReplaced);
    }

    private void requireLive(int index) {
        DeviceStatus st = new DeviceStatus(status);
        if (!st.isLive())
            throw new DeviceException(devid, "queue " + index + " is stopped or started alone only while the device is live (" + st + ")");
    }

    /**
     * Waits until no operator's pause holds the device, at most {@link QueueWorker#WAIT_BOUND}: a snapshot's pause
     * lasts milliseconds, so a front-end's queue change that lands in one waits it out instead of failing. The lock
     * is let go while waiting ({@link #resume} and a reset wake the waiter); the caller checks the device again after.
     *
     * @throws DeviceException if the device is still paused after the bound (a migration holds it, or a snapshot
     *         asked it to stay paused)
     */
    private void awaitUnpaused(Attachment a, int index) {
        if (!paused) return;
        long deadline = System.nanoTime() + QueueWorker.WAIT_BOUND.toNanos();
        boolean interrupted = false;
        try {
            while (paused) {
                long left = deadline - System.nanoTime();
                if (left <= 0)
                    throw new DeviceException(devid, "queue " + index + ": the device is paused (its state is being saved) and stayed paused for "
                            + QueueWorker.WAIT_BOUND.toMillis() + " ms");
                try {
                    wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
        checkHolder(a);   // the lock was let go: the driver may have left meanwhile
    }

    /** The fallback's stop: quiesce and save every running queue, then stop the data path. */
    private List<QueueState> stopWholeDataPathLocked() {
        List<QueueState> saved;
        try {
            function.quiesce();
            saved = function.saveQueues();
        } catch (DeviceFault | RuntimeException e) {
            throw queueChangeFailed("the data path did not stop for a queue change: " + e.getMessage(), e);
        }
        stopDataPathLocked();
        return saved;
    }

    /** The fallback's start: the data path runs again once every required queue is started. */
    private void restartIfReadyLocked() {
        boolean any = false;
        for (QueueSlot s : slots) {
            if (s.started) any = true;
            else if (s.spec.required()) return;
        }
        if (!any) return;
        try {
            startDataPathLocked();
        } catch (DeviceFault | RuntimeException e) {
            stopDataPathLocked();
            throw new DeviceException(devid, "the queues cannot start: " + e.getMessage(), e);
        }
    }

    /** A queue change left no stable state: NEEDS_RESET (the driver is told off this lock), and the caller fails. */
    private DeviceException queueChangeFailed(String reason, Exception cause) {
        if (markNeedsResetLocked(reason)) {
            Attachment told = attachment;
            Thread.ofVirtual().name("jvbus-needs-reset-" + container + "/" + devid).start(() -> tellNeedsReset(told, reason));
        }
        return new DeviceException(devid, reason, cause);
    }

    synchronized DeviceFunction function(Attachment a) {
        checkHolder(a);
        return function;
    }

    synchronized void detach(Attachment a) {
        if (attachment != a) return;
        resetLocked();
        attachment = null;
    }

    // ---- device side ----

    /** The device found a driver error (bad ring): NEEDS_RESET, driver told, everyone else unaffected. */
    public void needsReset(String reason) {
        Attachment told;
        synchronized (this) {
            if (!markNeedsResetLocked(reason)) return;
            told = attachment;
        }
        tellNeedsReset(told, reason);
    }

    /** A data-path report, on its own thread (see {@link Run#needsReset}): acted on only if its run is current. */
    private void needsReset(Run from, String reason) {
        Attachment told;
        synchronized (this) {
            if (from.id != run) {
                lateFaultsIgnored++;
                LOG.info(() -> "device " + container + "/" + devid + ": a fault of an earlier run of the data path is ignored"
                        + " (the driver reset since): " + reason);
                return;
            }
            if (!markNeedsResetLocked(reason)) return;
            told = attachment;
        }
        tellNeedsReset(told, reason);
    }

    private void tellNeedsReset(Attachment told, String reason) {
        onNeedsReset.accept(this);
        if (told != null) told.observer().needsReset(devid, reason);
    }

    private boolean markNeedsResetLocked(String reason) {
        if ((status & DeviceStatus.NEEDS_RESET) != 0) return false;
        needsResetReason = reason;
        status |= DeviceStatus.NEEDS_RESET;
        stopDataPathLocked();   // stop the queues: nothing more is read from a ring we no longer trust
        return true;
    }

    /** Ends the current run (its late reports are ignored from now on) and stops the function's data path. */
    private void stopDataPathLocked() {
        run++;
        function.reset();
        for (QueueSlot s : slots) s.counters.detach();   // no ring runs any queue now; the counts stay
        if (running) stops++;
        running = false;
    }

    private void resetLocked() {
        stopDataPathLocked();
        features.reset();
        status = 0;
        paused = false;
        notifyAll();   // a queue change waiting out a pause (awaitUnpaused) finds the device reset
        needsResetReason = null;
        memory = GuestMemory.empty();
        for (QueueSlot s : slots) s.clear();
    }

    /** Unplug: reset, queues stopped, the driver told. Called by the container. */
    void unplug() {
        Attachment told;
        synchronized (this) {
            if (removed) return;
            removed = true;
            resetLocked();
            try {
                function.close();
            } catch (RuntimeException e) {
                // a model that fails to let go must not stop the unplug; the device is gone either way
            }
            told = attachment;
            attachment = null;
        }
        if (told != null) {
            told.markClosed();
            told.observer().removed(devid);
        }
    }

    // ---- operator side: save / restore ----

    /**
     * Tells this device's driver that the device is moving to another bus (a migration, once the other
     * bus restored it): the driver reconnects there with the same memory and doorbells, nothing
     * renegotiated. The device must be paused, so that it never runs on both buses: it stays paused
     * here until it is released or, if the move fails, resumed.
     *
     * @return whether a driver was told (false: no driver holds it, or its connector cannot tell one)
     * @throws DeviceException if the device is not paused
     */
    public boolean announceMove(Relocation to) {
        Attachment told;
        synchronized (this) {
            if (!paused) throw new DeviceException(devid, "announce a move only while paused: the device must not run on two buses");
            told = attachment;
        }
        return told != null && told.observer().moved(devid, to);
    }


    /**
     * Stop the data path so state can be saved. The function waits for its threads within its
     * bounds; if they do not stop (a thread stuck in a call that does not return), the queue state
     * is not stable: the device goes NEEDS_RESET, its driver is told, and the pause fails.
     *
     * @throws DeviceException if the data path did not stop within its bound
     */
    public void pause() {
        Attachment told;
        String reason;
        DeviceFault cause;
        synchronized (this) {
            if (paused) return;
            try {
                if (running) {
                    function.quiesce();
                    pauses++;
                }
                paused = true;
                return;
            } catch (DeviceFault e) {
                cause = e;
                reason = "pause: " + e.getMessage();
                if (!markNeedsResetLocked(reason)) reason = null;
                told = attachment;
            }
        }
        if (reason != null) tellNeedsReset(told, reason);
        throw new DeviceException(devid, "pause failed, the device needs a reset: " + cause.getMessage(), cause);
    }

    /**
     * Carry on after {@link #pause()}. A restored device starts its data path here, once its
     * driver's connector has shared memory and doorbells again.
     */
    public synchronized void resume() {
        if (!paused) return;
        if (running) {
            function.resume();
        } else if (new DeviceStatus(status).isLive()) {
            try {
                startLocked();
            } catch (DeviceFault | RuntimeException e) {
                markNeedsResetLocked("resume failed: " + e.getMessage());
                throw new DeviceException(devid, "resume failed: " + e.getMessage(), e);
            }
        }
        paused = false;
        notifyAll();   // a queue change that waited out the pause (awaitUnpaused) goes ahead
    }

    public synchronized boolean isPaused() { return paused; }

    /**
     * Whether {@link #resume()} would start the data path without failing for want of a driver. A
     * restored device waits paused while its driver's connector shares memory and doorbells again
     * (after a migration the driver reconnects to this bus); resuming before the last doorbell is set
     * would fail the start and leave the device needing a reset. So an operator (the management plane)
     * waits for this first. True too when there is nothing to wait for: the device is not paused, its
     * data path only sleeps (a snapshot's pause), or its status is not live (nothing starts).
     */
    public synchronized boolean readyToResume() {
        if (!paused || running || !new DeviceStatus(status).isLive()) return true;
        if (attachment == null) return false;
        for (QueueSlot s : slots)
            if (s.config != null && s.enabled && (s.kick == null || s.call == null)) return false;
        return true;
    }

    /**
     * Saves the device. A live device (DRIVER_OK) must be paused first: a running queue has no
     * stable state.
     */
    public synchronized DeviceState save() {
        if (running && !paused)
            throw new DeviceException(devid, "pause the device before saving: its queues are running");
        List<QueueState> queues;
        try {
            queues = running ? function.saveQueues() : pendingQueueStates();
        } catch (RuntimeException e) {
            // A ring whose worker died of a fault mid-batch has no consistent position to save
            // (used elements pushed, not published): the device's error, reported as one.
            throw new DeviceException(devid, "queues cannot be saved: " + e.getMessage(), e);
        }
        ModelState modelState = function.saveModel();
        if (!model.stateSchema().equals(modelState.schema()))
            throw new DeviceException(devid, "the model saved " + modelState.schema() + ", but " + model.type()
                    + " declares " + model.stateSchema());
        return new DeviceState(model.type(), devid.value(), status, features.limit(),
                features.negotiated(), config.snapshot(), queues, params, modelState);
    }

    /**
     * The device's state as far as it can be known while it runs, for a migration that prepares the target
     * before it pauses the device here: what {@link #save()} returns, but with each running queue as the driver
     * placed it, from position zero with nothing in flight, and the model's state as it is now (the data path
     * may change it meanwhile). The positions only a paused device has come with {@link #completeRestore}.
     * A device that does not run (paused, or never started) saves as {@link #save()} does.
     */
    public synchronized DeviceState saveAhead() {
        if (!running || paused) return save();
        long negotiated = features.negotiated();
        List<QueueState> queues = new ArrayList<>();
        for (QueueSlot s : slots) {
            if (!s.started || s.config == null) continue;
            QueueConfig c = s.config;
            // A split ring's event idx is the negotiated feature; an IOQ ring's is its own, known once it is saved paused.
            boolean eventIdx = s.spec.kind() == RingKind.SPLIT && VirtioFeatures.EVENT_IDX.in(negotiated);
            queues.add(new QueueState(s.index, s.spec.kind(), c.size(), s.enabled, c.descAddr(), c.availAddr(), c.usedAddr(),
                    0, 0, eventIdx, List.of()));
        }
        ModelState modelState = function.saveModel();
        return new DeviceState(model.type(), devid.value(), status, features.limit(), negotiated, config.snapshot(), queues, params,
                modelState);
    }

    /**
     * Completes the restore of this device from a state saved ahead ({@link #saveAhead}) with {@code later},
     * the state saved at the pause: the queues (placement and positions), the config space and the model's state
     * are taken from it. What the driver settled cannot have changed in between without a new negotiation the
     * restored device did not see, so a {@code later} with another type, devid, status or negotiated features is
     * refused as stale, and so is a queue the model does not take, each before anything changes. Only while the
     * restored device waits paused and its data path never ran: once it runs, its positions are its own.
     *
     * @throws DeviceException if refused (the device is as it was), or if the config or model state was refused
     *         midway (the device is reset then: remove it)
     */
    public synchronized void completeRestore(DeviceState later) {
        if (removed) throw new DeviceException(devid, "device was removed");
        if (!paused || running)
            throw new DeviceException(devid, "only a restored device that waits paused and never ran is completed");
        if (!later.type().equals(model.type()) || later.devid() != devid.value())
            throw new DeviceException(devid, "the completing state is of " + later.type() + " device " + Integer.toUnsignedString(later.devid())
                    + ", this is " + model.type() + " device " + devid);
        if (later.status() != status)
            throw new DeviceException(devid, "stale: the driver changed the status from 0x" + Integer.toHexString(status) + " to 0x"
                    + Integer.toHexString(later.status()) + " after the state this device was restored from was saved");
        DeviceStatus saved = new DeviceStatus(later.status());
        if (saved.has(DeviceStatus.FEATURES_OK) && later.negotiated() != features.negotiated())
            throw new DeviceException(devid, "stale: the negotiated features changed from 0x" + Long.toHexString(features.negotiated())
                    + " to 0x" + Long.toHexString(later.negotiated()) + " after the state this device was restored from was saved");
        boolean[] seen = new boolean[slots.length];
        for (QueueState q : later.queues()) {
            QueueSpec spec = spec(q.index());
            if (seen[q.index()]) throw new DeviceException(devid, "queue " + q.index() + " is completed twice");
            seen[q.index()] = true;
            if (q.kind() != spec.kind())
                throw new DeviceException(devid, "queue " + q.index() + " was saved as " + q.kind() + ", model has " + spec.kind());
            if (!spec.accepts(q.size()))
                throw new DeviceException(devid, "queue " + q.index() + " (" + spec.name() + ") saved size " + q.size() + " is not " + spec.sizeRule());
            try {
                checkQueueFeatures(q, saved, features.negotiated());
            } catch (IllegalArgumentException e) {
                throw new DeviceException(devid, e.getMessage());
            }
        }
        try {
            config.restore(later.config());
            if (!model.stateSchema().equals(later.model().schema()))
                throw new IllegalArgumentException("saved model state is " + later.model().schema() + ", " + model.type()
                        + " reads " + model.stateSchema());
            function.restoreModel(later.model());
        } catch (DeviceFault | IllegalArgumentException e) {
            resetLocked();
            throw new DeviceException(devid, "completing the restore failed: " + e.getMessage(), e);
        }
        for (QueueSlot s : slots) {
            s.config = null;
            s.enabled = false;
            s.resumeFrom = null;
        }
        for (QueueState q : later.queues()) {
            QueueSlot slot = slots[q.index()];
            slot.config = new QueueConfig(q.index(), q.size(), q.descAddr(), q.availAddr(), q.usedAddr());
            slot.enabled = q.ready();
            slot.resumeFrom = q;
        }
    }

    /** A restored device not yet resumed still owes its saved queue states. */
    private List<QueueState> pendingQueueStates() {
        List<QueueState> out = new ArrayList<>();
        for (QueueSlot s : slots) if (s.resumeFrom != null) out.add(s.resumeFrom);
        return out;
    }

    /**
     * Restore into this freshly created device: impose features, config and status, keep the queue
     * positions. The device stays paused: the data path starts on {@link #resume()}, after the
     * driver's connector has shared memory and doorbells.
     *
     * <p>The file is checked, not trusted. The operator limit stays the one this device was created
     * with on this bus: the file's limit tells what the source allowed, and a file must never widen
     * what this bus's operator limited, so saved features outside this device's offer are refused by
     * name. The status must be one a device can reach, and each queue's feature-dependent fields must
     * agree with the features imposed.
     */
    synchronized void restore(DeviceState s) {
        if (!s.type().equals(model.type()))
            throw new DeviceException(devid, "saved state is of type " + s.type() + ", device is " + model.type());
        DeviceStatus saved = new DeviceStatus(s.status());
        Optional<String> unreachable = DeviceStatus.unreachable(s.status());
        if (unreachable.isPresent())
            throw new DeviceException(devid, "restore refused: saved status 0x" + Integer.toHexString(s.status())
                    + " is not one a device can be in: " + unreachable.get());
        long relied = reliedOnFeatures(s, saved);
        // A saved driver may hold features the model offered once and honours still (DeviceModel#featuresHonouredOnRestore).
        long honoured = model.featuresHonouredOnRestore(params) & features.limit();
        long outside = relied & ~(features.offered() | honoured);
        if (outside != 0)
            throw new FeatureNegotiationException(devid, outside, model.features().names(outside),
                    (saved.has(DeviceStatus.FEATURES_OK) ? "cannot impose saved features" : "cannot restore the offer the driver was reading")
                            + " under this bus's operator limit 0x" + Long.toHexString(features.limit()));
        if (saved.has(DeviceStatus.FEATURES_OK)) features.impose(s.negotiated(), honoured);   // inside offer and honoured: checked above
        try {
            config.restore(s.config());
            if (!model.stateSchema().equals(s.model().schema()))
                throw new IllegalArgumentException("saved model state is " + s.model().schema() + ", " + model.type()
                        + " reads " + model.stateSchema());
            function.restoreModel(s.model());
            for (QueueState q : s.queues()) {
                QueueSpec spec = spec(q.index());
                if (q.kind() != spec.kind())
                    throw new IllegalArgumentException("queue " + q.index() + " was saved as " + q.kind() + ", model has " + spec.kind());
                if (!spec.accepts(q.size()))
                    throw new IllegalArgumentException("queue " + q.index() + " (" + spec.name() + ") saved size " + q.size()
                            + " is not " + spec.sizeRule());
                checkQueueFeatures(q, saved, features.negotiated());
                QueueSlot slot = slots[q.index()];
                slot.config = new QueueConfig(q.index(), q.size(), q.descAddr(), q.availAddr(), q.usedAddr());
                slot.enabled = q.ready();
                slot.resumeFrom = q;
            }
            status = s.status();
            // The reason did not travel with the state; say where the bit came from.
            if (saved.has(DeviceStatus.NEEDS_RESET)) needsResetReason = "it was saved needing a reset";
            paused = true;
        } catch (DeviceFault | IllegalArgumentException | DeviceException e) {
            resetLocked();
            throw new DeviceException(devid, "restore failed: " + e.getMessage(), e);
        }
    }

    /**
     * The saved features the restored driver goes on using without asking again: the negotiated set once
     * FEATURES_OK was set; before that, after DRIVER, the offer it may be reading (the file's limit on this
     * model's bits), since it will ack from it. A negotiated set without FEATURES_OK is no state a device
     * saves.
     */
    private long reliedOnFeatures(DeviceState s, DeviceStatus saved) {
        if (saved.has(DeviceStatus.FEATURES_OK)) return s.negotiated();
        if (s.negotiated() != 0)
            throw new DeviceException(devid, "restore refused: negotiated features 0x" + Long.toHexString(s.negotiated())
                    + " saved without FEATURES_OK");
        return saved.has(DeviceStatus.DRIVER) ? features.available() & s.limit() : 0;
    }

    /**
     * A queue's fields that mean something only under a feature agree with the features in force. Queues are
     * set up after FEATURES_OK (virtio 1.x 3.1.1), so a saved queue needs it. A split ring's {@code eventIdx}
     * is VIRTIO_RING_F_EVENT_IDX: a ring restored with it on while the driver never negotiated it would have
     * the device read and write fields the driver does not keep, and the other way round lose notifications.
     * An IOQ ring's {@code eventIdx} is its shm-signal suppression, part of the IOQ layout itself rather than
     * a negotiated feature, so there is nothing to compare it with.
     */
    private static void checkQueueFeatures(QueueState q, DeviceStatus saved, long negotiated) {
        if (!saved.has(DeviceStatus.FEATURES_OK))
            throw new IllegalArgumentException("queue " + q.index() + " was saved, but its status " + saved
                    + " has no FEATURES_OK: queues are set up after features are settled");
        if (q.kind() == RingKind.SPLIT && q.eventIdx() != VirtioFeatures.EVENT_IDX.in(negotiated))
            throw new IllegalArgumentException("queue " + q.index() + " was saved with event idx " + (q.eventIdx() ? "on" : "off")
                    + ", but " + VirtioFeatures.EVENT_IDX.name() + " is " + (q.eventIdx() ? "not " : "") + "negotiated");
    }

    private void checkHolder(Attachment a) {
        if (a != attachment || a == null)
            throw new DeviceException(devid, removed ? "device was removed" : "not attached (the attachment was closed)");
    }

    @Override
    public String toString() {
        return "Device[" + container + "/" + devid + " " + model.type() + " " + status() + "]";
    }

    private final class Context implements DeviceContext {
        @Override public int devid() { return devid.value(); }

        @Override public String container() { return container; }

        @Override public Map<String, String> params() { return params; }

        @Override public <T> T resource(ContainerResource<T> key) { return resources.get(key); }

        @Override public ConfigSpace config() { return config; }

        @Override public long negotiatedFeatures() {
            synchronized (Device.this) {
                return features.negotiated();
            }
        }

        @Override public void needsReset(String reason) { Device.this.needsReset(reason); }

        @Override public void configChanged() {
            Attachment told;
            synchronized (Device.this) {
                told = attachment;
            }
            if (told != null) told.observer().configChanged(devid);
        }
    }

    /** One run of the data path (see {@link DataPathRun}); current while {@link #run} still has its id. */
    private final class Run implements DataPathRun {
        private final int id;
        private final AtomicBoolean reported = new AtomicBoolean();

        Run(int id) {
            this.id = id;
        }

        @Override public boolean isCurrent() { return run == id; }

        @Override public void needsReset(String reason) {
            if (!reported.compareAndSet(false, true)) return;
            // A thread of its own: the caller may be a worker a control thread waits for while holding
            // the device's lock, or a delivery holding a port's lock. Virtual: blocking on the device's
            // monitor does not pin a carrier (Java 24+).
            Thread.ofVirtual().name("jvbus-fault-" + container + "/" + devid).start(() -> Device.this.needsReset(this, reason));
        }
    }
}
