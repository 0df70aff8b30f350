package dev.jvbus.core.sys;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

/**
 * When a mapping of a peer's memory may be unmapped: only once no thread that may touch it can still run.
 *
 * <p><b>Why.</b> Ring memory is read and written at host addresses without FFM's per-access scope check
 * (the split ring's direct mode, {@code SplitRing}): it costs a third of the ring's CPU per message. A
 * thread that touches such memory after it was unmapped does not meet an {@link IllegalStateException}, it
 * raises SIGSEGV and the JVM dies with every device of the bus. A connector cannot simply unmap a session's
 * memory at close: a stop is bounded ({@code QueueWorker.stop}, {@code RxGate.close}), and a worker stuck in
 * a call inside its batch (a delivery into a wedged device, a blocking doorbell) is left behind and carries
 * on when the call returns. So the unmap waits for that worker instead of racing it.
 *
 * <p><b>The rule.</b> A mapping has holds: its owner's (the connector's region: taken at construction,
 * dropped once by {@link #release()} when the session closes or the memory table drops the region), and one
 * per user that may touch it from another thread ({@link #hold()}, through {@code GuestMemory.hold()}: a queue worker, from its start until its
 * thread has exited; an rx gate with a delivery stuck inside, until that delivery left). The mapping is
 * unmapped by the last release, exactly once, on whichever thread drops it. A user that never stops keeps
 * its mapping mapped: memory stays spent (counted in {@link #outlivedOwner()}, logged once), the bus does not
 * crash. That is bounded by the stuck threads, which are bounded and counted themselves (workers left
 * behind, stuck gate closes).
 *
 * <p>A hold is taken only while the mapping is certainly alive: by the owner's thread before it releases
 * (the worker of a ring the session set up, a gate close on the control plane that the session waits for).
 * A hold asked for after the last release fails ({@link IllegalStateException}): nothing is ever revived.
 *
 * <p>What this does not cover: a peer truncating its file under the mapping (a SIGBUS the JVM turns into an
 * {@link InternalError} on the accessing thread; {@code dev.jvbus.core.memory.MappedMemoryFault}). That is the same in both modes.
 */
public final class MappingLifetime {
    private static final Logger LOG = Logger.getLogger(MappingLifetime.class.getName());

    private final String what;
    private final long bytes;
    private final Runnable unmap;
    private final AtomicInteger holds = new AtomicInteger(1);   // the owner's, until release()
    private final AtomicBoolean ownerReleased = new AtomicBoolean();
    private volatile boolean unmapped;

    /**
     * @param what  the mapping, for the log line
     * @param unmap what the last release runs (munmap, close the fd); runs once
     */
    public MappingLifetime(String what, Runnable unmap) {
        this(what, 0, unmap);
    }

    /** @param bytes the mapping's size, for operators ({@link LingeringMappings}) */
    public MappingLifetime(String what, long bytes, Runnable unmap) {
        this.what = what;
        this.bytes = bytes;
        this.unmap = unmap;
    }

    /** The mapping's size as given (0 if not). */
    public long bytes() {
        return bytes;
    }

    /**
     * A user's hold on the mapping; the caller must be sure it is mapped now (see the class comment).
     *
     * @throws IllegalStateException if it is unmapped already
     */
    public Hold hold() {
        for (int n = holds.get(); ; n = holds.get()) {
            if (n == 0) throw new IllegalStateException(what + " is unmapped");
            if (holds.compareAndSet(n, n + 1)) return new Hold();
        }
    }

    /** The owner is done with it (once; later calls do nothing): unmapped now unless a user still holds it. */
    public void release() {
        if (!ownerReleased.compareAndSet(false, true)) return;
        if (drop() > 0)
            LOG.warning(() -> what + " outlives its owner: a worker that may touch it has not stopped yet; "
                    + "it stays mapped until that worker is gone");
    }

    private int drop() {
        int left = holds.decrementAndGet();
        if (left == 0) {
            unmapped = true;
            unmap.run();
        }
        return left;
    }

    /** True once the last hold went and the mapping was unmapped. */
    public boolean isUnmapped() {
        return unmapped;
    }

    /** True while the owner has released it but a user still holds it: mapped for a worker that has not stopped. */
    public boolean outlivedOwner() {
        return ownerReleased.get() && !unmapped;
    }

    /** Users holding it now (the owner's hold not counted). */
    public int users() {
        return Math.max(0, holds.get() - (ownerReleased.get() ? 0 : 1));
    }

    @Override
    public String toString() {
        return "MappingLifetime[" + what + (unmapped ? ", unmapped" : ", users " + users()) + "]";
    }

    /** One user's hold: released once, however often asked. */
    public final class Hold {
        private final AtomicBoolean released = new AtomicBoolean();

        private Hold() {}

        public void release() {
            if (released.compareAndSet(false, true)) drop();
        }

        public MappingLifetime lifetime() {
            return MappingLifetime.this;
        }
    }
}
