package dev.jvbus.core.memory;

import dev.jvbus.core.sys.MappingLifetime;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.logging.Logger;

/**
 * A user's hold on every mapping a {@link GuestMemory} reads and writes ({@link GuestMemory#hold()}): while
 * it is held, none of them is unmapped (see {@link MappingLifetime}). Released once, by the user when it has
 * provably stopped touching the memory: a queue worker when its thread exits; an rx gate when the delivery it
 * could not wait out has left ({@link #releaseWhen}).
 */
public final class MemoryHold {
    /** Memory that nobody unmaps under its users (tests, benchmarks, memory the process allocated): nothing to hold. */
    public static final MemoryHold NONE = new MemoryHold(new MappingLifetime.Hold[0]);
    private static final Logger LOG = Logger.getLogger(MemoryHold.class.getName());
    /** How often a deferred release looks whether its user has gone (rare: only after a stop that gave up). */
    static final Duration POLL = Duration.ofMillis(10);

    private final MappingLifetime.Hold[] holds;
    private final AtomicBoolean released = new AtomicBoolean();

    MemoryHold(MappingLifetime.Hold[] holds) {
        this.holds = holds;
    }

    /** Releases every mapping held, once; the last user of a mapping its owner let go unmaps it. */
    public void release() {
        if (this == NONE || !released.compareAndSet(false, true)) return;
        for (MappingLifetime.Hold h : holds) h.release();
    }

    /**
     * Releases once {@code gone} is true: a user that could not be waited out (a delivery stuck inside a gate)
     * is watched by a virtual thread of its own until it has left. Such users are rare and counted by their
     * owners (stuck gate closes), so are these watchers; one that never leaves keeps the memory mapped.
     *
     * @param gone true once the user has provably stopped touching the memory (and stays true)
     */
    public void releaseWhen(BooleanSupplier gone, String who) {
        if (this == NONE) return;
        if (gone.getAsBoolean()) {
            release();
            return;
        }
        LOG.info(() -> who + " did not stop within its bound: its memory stays mapped until it has left");
        Thread.ofVirtual().name("memory-hold " + who).start(() -> {
            while (!gone.getAsBoolean()) {
                try {
                    Thread.sleep(POLL);
                } catch (InterruptedException e) {
                    return;   // never released: the memory stays mapped, which is safe
                }
            }
            release();
        });
    }

    /** True once released. */
    public boolean isReleased() {
        return this == NONE || released.get();
    }
}
