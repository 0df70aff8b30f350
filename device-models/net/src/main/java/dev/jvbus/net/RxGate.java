package dev.jvbus.net;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryHold;
import dev.jvbus.core.sys.ProcessBarrier;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * The gate in front of a device's rx ring, which the switch fills on the senders' threads: the
 * control plane closes it to stop deliveries (reset, pause for a save, link down) and waits out the
 * delivery in progress, so the ring is its own again.
 *
 * <p>A Dekker pair: a delivery stores "inside" then loads "open"; the closer stores "closed" then
 * loads "inside". Either the delivery sees the gate closed, or the closer sees it inside and waits for
 * it to leave. Deliveries to one port are serialised by the switch, so at most one is inside. Nothing
 * allocated.
 *
 * <p><b>The fence is on the closer's side.</b> A Dekker pair needs a full fence between each side's store and
 * its load. On the delivery's side that was one fence per frame, and a full fence waits until the thread's earlier
 * stores have reached memory: with the front-end on another core, stores into lines it holds (a frame's rx header,
 * a used element) that take a round trip each. So where the kernel has it ({@link ProcessBarrier}), a delivery
 * only keeps its store and its load in program order (an opaque store then an acquire load: HotSpot's compilers
 * keep such accesses in program order, and the one reordering x86 does, a store with a later load, is what the
 * closer's barrier covers), and the closer, between its store and its load, has every running thread of the
 * process execute a full barrier ({@code membarrier}): a delivery's store before that barrier is seen by the
 * closer's load, a delivery's load after it sees the gate closed. Closing costs about 4 us more, on the control
 * plane. Without the call both sides fence, as before. Measured in bench-switch at 64 B (session 11): alone it
 * changed nothing (the stores' waits moved to the next stall); with the rx headers written at publication, +2-3 %.
 *
 * <p><b>The wait is bounded.</b> A delivery is one copy and a doorbell; one still inside after
 * {@link #close(Duration) the bound} is stuck in a call that does not return (a doorbell the peer
 * made blocking, say). Closing then returns false (logged, counted in {@link #stuckCloses()}) and
 * the caller decides: a reset or unplug carries on (the stuck delivery's only ring action left is
 * that doorbell, so returning late it writes counters, nothing else), a pause fails (the ring is not
 * stable). An operator's unplug never waits for it for ever.
 *
 * <p><b>Memory.</b> A stuck delivery is still inside the rx ring's memory, which its connector may unmap as
 * soon as the device lets go (a session closing after a reset). So a close that gives up takes a hold on
 * the memory the rx rings use now ({@code memoryInUse}, the only memory a delivery inside can be touching:
 * rings change memory only while the gate is closed, and deliveries are serialised, so no other one can
 * have entered) and releases it once the delivery has left ({@link MemoryHold#releaseWhen}): the memory
 * stays mapped for it however long it takes ({@link dev.jvbus.core.sys.MappingLifetime}).
 */
public final class RxGate {
    /** How long {@link #close()} waits for a delivery in progress: the switch's stall bound. */
    public static final Duration DEFAULT_BOUND = L2Switch.DEFAULT_STALL_BOUND;
    private static final System.Logger LOG = System.getLogger(RxGate.class.getName());
    private static final VarHandle OPEN, INSIDE;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            OPEN = l.findVarHandle(RxGate.class, "open", int.class);
            INSIDE = l.findVarHandle(RxGate.class, "inside", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final String owner;
    private final Supplier<GuestMemory> memoryInUse;
    /** The fence on the closer's side only ({@link ProcessBarrier}); false: on both sides. */
    private final boolean asymmetric;
    @SuppressWarnings("unused") private volatile int open;     // via OPEN
    @SuppressWarnings("unused") private volatile int inside;   // via INSIDE
    private volatile long stuckCloses;                         // written by the control plane only

    /** @param owner the device, for log lines */
    public RxGate(String owner) {
        this(owner, () -> null);
    }

    /**
     * @param owner       the device, for log lines
     * @param memoryInUse the memory the rx rings lie in now (null when none runs); asked only when a close gives
     *                    up on a stuck delivery, on the closing thread
     */
    public RxGate(String owner, Supplier<GuestMemory> memoryInUse) {
        this(owner, memoryInUse, ProcessBarrier.available());
    }

    /** @param asymmetric the fence on the closer's side only (needs {@link ProcessBarrier#available()}); false: both sides */
    RxGate(String owner, Supplier<GuestMemory> memoryInUse, boolean asymmetric) {
        if (asymmetric && !ProcessBarrier.available()) throw new IllegalArgumentException("membarrier is not available here");
        this.owner = owner;
        this.memoryInUse = memoryInUse;
        this.asymmetric = asymmetric;
    }

    /** True if this gate's fence is on the closer's side only. */
    public boolean asymmetric() {
        return asymmetric;
    }

    /**
     * A delivery comes in: true if the gate is open. Call {@link #leave()} after, whatever this
     * returned (in a finally block).
     */
    public boolean enter() {
        if (asymmetric) {
            INSIDE.setOpaque(this, 1);
            return (int) OPEN.getAcquire(this) != 0;   // acquire: the ring the control plane set up before open()
        }
        INSIDE.setVolatile(this, 1);
        return (int) OPEN.getVolatile(this) != 0;
    }

    /** The delivery is done with the ring. */
    public void leave() {
        INSIDE.setRelease(this, 0);
    }

    /** Lets deliveries in (the ring is set up and running). */
    public void open() {
        OPEN.setVolatile(this, 1);
    }

    public boolean isOpen() {
        return (int) OPEN.getVolatile(this) != 0;
    }

    /** {@link #close(Duration)} within {@link #DEFAULT_BOUND}. */
    public boolean close() {
        return close(DEFAULT_BOUND);
    }

    /**
     * Closes the gate and waits until no delivery is inside, at most {@code bound}.
     *
     * @return true once no delivery is inside; false if one was still inside after {@code bound}
     *         (logged): the gate stays closed, that delivery is stuck and leaves when its call returns
     */
    public boolean close(Duration bound) {
        OPEN.setVolatile(this, 0);
        if (asymmetric) ProcessBarrier.acrossThreads();   // the deliveries' half of the fence (see the class comment)
        if ((int) INSIDE.getVolatile(this) == 0) return true;
        long deadline = System.nanoTime() + bound.toNanos();
        for (int spins = 0; (int) INSIDE.getVolatile(this) != 0; spins++) {
            if (System.nanoTime() - deadline > 0) {
                stuckCloses = stuckCloses + 1;
                LOG.log(System.Logger.Level.WARNING, "{0}: an rx delivery is still in progress after {1} ms (stuck in a call that"
                        + " does not return); the rx gate stays closed and the caller carries on without it", owner, String.valueOf(bound.toMillis()));
                holdMemoryUntilLeft();
                return false;
            }
            if (spins < 100) Thread.onSpinWait();
            else if (spins < 200) Thread.yield();
            else LockSupport.parkNanos(50_000);
        }
        return true;
    }

    /** Keeps the rx rings' memory mapped until the stuck delivery has left (see the class comment). */
    private void holdMemoryUntilLeft() {
        GuestMemory m = memoryInUse.get();
        if (m == null) return;
        try {
            m.hold().releaseWhen(() -> (int) INSIDE.getVolatile(this) == 0, owner + ": stuck rx delivery");
        } catch (IllegalStateException e) {   // its owner let go already: nothing of it is mapped to protect
            LOG.log(System.Logger.Level.WARNING, "{0}: {1}", owner, e.getMessage());
        }
    }

    /** Closes that gave up on a stuck delivery (see {@link #close(Duration)}). */
    public long stuckCloses() {
        return stuckCloses;
    }

    @Override
    public String toString() {
        return "RxGate[" + owner + (isOpen() ? ", open" : ", closed") + ((int) INSIDE.getVolatile(this) != 0 ? ", delivery inside" : "") + "]";
    }
}
