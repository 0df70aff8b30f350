package dev.jvbus.connector.kvm;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.sys.PeerCredentials;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * A micro-VM running in the background as one of its container's exposures (kind {@value #KIND}): listed
 * with the container's shm and vhost-user exposures, with one session (this process, since the guest
 * started, the features in force on each device it holds), so its devices show up like any other
 * client's. It ends when its guest exits or faults, when it is {@linkplain #close() closed} (the operator's
 * stop), or when its container is destroyed; then its devices are reset and released and it leaves the list.
 *
 * <p>The guest's own counters (the responder's) are read from guest memory while it lives and kept as
 * they were last seen once it has ended, when that memory is gone.
 */
public final class LiveMicroVm implements Exposure {
    public static final String KIND = "kvm";
    /** What the listing names as the exposure's "socket": the device it attaches through (there is no socket). */
    public static final Path DEVICE = Path.of("/dev/kvm");
    /** How long a background guest may run: as good as for ever; the operator stops it. */
    static final Duration FOREVER = Duration.ofDays(3650);

    private final String id;
    private final Container container;
    private final MicroVm vm;
    private final Responder responder;
    private final Instant since = Instant.now();
    private final Thread thread;
    private final Consumer<LiveMicroVm> onEnd;
    private volatile RunReport outcome;
    private volatile Responder.Counters lastCounters = new Responder.Counters(0, 0, 0, 0, 0);
    private volatile boolean ended;
    /** Set (under this) before the VM is closed: from then on guest memory may be unmapped and is never read. */
    private boolean closing;
    /**
     * Its one session (this process), made with it: the exposure is listed, and its observers ask for its
     * {@link #info()}, as soon as {@link dev.jvbus.core.bus.Exposures#expose} has it, before {@link #begin()} opens the session.
     */
    private final SessionInfo session;

    private LiveMicroVm(String id, Container container, MicroVm vm, Responder responder, Consumer<LiveMicroVm> onEnd) {
        this.id = id;
        this.container = container;
        this.vm = vm;
        this.responder = responder;
        this.onEnd = onEnd;
        PeerCredentials me = PeerCredentials.ofThisProcess();
        this.session = new SessionInfo(me.pid(), me.uid(), me.gid(), since, java.util.Map.of());
        this.thread = Thread.ofPlatform().daemon().name("micro-vm-" + id).unstarted(this::run);
    }

    /**
     * Starts the responder in a micro-VM of {@code memoryBytes} attached to {@code container}, registered as an
     * exposure of it. {@code onEnd} runs once, on the VM's thread, when the guest has ended for any reason.
     *
     * @throws dev.jvbus.core.sys.Errno.SysException if KVM refuses the VM
     */
    public static LiveMicroVm startResponder(Container container, long memoryBytes, Responder responder, Consumer<LiveMicroVm> onEnd) {
        Objects.requireNonNull(responder);
        MicroVm vm = MicroVm.create(container, GuestProgram.vbusGuest(), memoryBytes);
        try {
            LiveMicroVm live = container.exposures().expose(KIND, (Function<String, LiveMicroVm>) id -> new LiveMicroVm(id, container, vm, responder,
                    onEnd == null ? x -> { } : onEnd));
            live.begin();
            return live;
        } catch (RuntimeException e) {
            vm.close();
            throw e;
        }
    }

    private void begin() {
        container.exposures().sessionOpened(this, session);
        thread.start();
    }

    private void run() {
        RunReport r;
        try {
            r = responder.run(vm, FOREVER);
        } catch (RuntimeException e) {
            r = new RunReport.Faulted("the VMM failed: " + e.getMessage(), 0, 0, new RunReport.Stats(0, 0, 0, Duration.ZERO));
        }
        synchronized (this) {
            if (!closing) {   // the guest ended by itself: its memory is still mapped
                lastCounters = Responder.counters(vm);
                closing = true;
            }
        }
        outcome = r;
        end();
    }

    /** Ends once: the VM closed (devices reset and released), the session and the exposure gone from the lists. */
    private void end() {
        synchronized (this) {
            if (ended) return;
            ended = true;
            closing = true;
        }
        vm.close();
        container.exposures().sessionClosed(this, session);
        container.exposures().forget(this);
        onEnd.accept(this);
    }

    @Override public String id() { return id; }

    @Override public String container() { return container.name(); }

    @Override public Optional<DevId> devid() { return Optional.empty(); }

    /** The device the responder drives. */
    public DevId device() { return new DevId((int) responder.devid()); }

    public Responder responder() { return responder; }

    public Instant since() { return since; }

    public long memoryBytes() { return vm.memory().regions().getFirst().size(); }

    /** How the guest ended, once it has. */
    public Optional<RunReport> outcome() { return Optional.ofNullable(outcome); }

    /** The guest's counters: read now while it runs, as last seen once it has ended. */
    public synchronized Responder.Counters counters() {
        if (!closing) lastCounters = Responder.counters(vm);
        return lastCounters;
    }

    @Override
    public ExposureInfo info() {
        boolean live;
        synchronized (this) {
            live = !ended;
        }
        List<SessionInfo> sessions = live
                ? List.of(new SessionInfo(session.pid(), session.uid(), session.gid(), since, vm.negotiatedFeatures()))
                : List.of();
        return new ExposureInfo(id, KIND, container.name(), Optional.empty(), DEVICE, live ? ExposureState.CONNECTED : ExposureState.CLOSED, sessions);
    }

    /** Stops the guest (the operator's stop, or its container going away) and waits for it to have ended. */
    @Override
    public void close() {
        synchronized (this) {
            if (!closing) {
                lastCounters = Responder.counters(vm);   // the last look at guest memory before it goes
                closing = true;
            }
        }
        vm.close();   // stops the vCPU; the run thread then ends this exposure
        try {
            thread.join(MicroVm.STOP_GRACE.plusSeconds(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        end();        // if the thread never started or is stuck, still leave the lists
    }
}
