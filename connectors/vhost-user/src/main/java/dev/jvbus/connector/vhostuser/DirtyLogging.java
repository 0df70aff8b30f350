package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.memory.DirtyLog;
import dev.jvbus.core.memory.GuestMemory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * One session's dirty logging (migration): the front-end's log (SET_LOG_BASE), its VHOST_F_LOG_ALL
 * switch (SET_FEATURES) and the guest memory the device writes through. Logging is on while LOG_ALL
 * is on and a log is set; then every device write to guest memory marks the log
 * ({@link GuestMemory#markDirty}). Session thread only; the device's writers see only the log
 * reference in the memory.
 *
 * <p>Switching logs under running rings. QEMU sends SET_LOG_BASE while rings run and, as soon as we
 * answer, reads the old log one last time and frees it (hw/virtio/vhost.c, vhost_dev_log_resize:
 * set_log_base, then vhost_log_put with sync). So a mark made in the old log after we answered is
 * lost, and a mark into a log we unmapped fails in the writer (once, that killed the worker between
 * publishing a used index and recording it, and GET_VRING_BASE answered a stale base). Linux's vhost
 * takes every ring's mutex to switch (the worker holds it per batch); our writers take no lock.
 * Instead {@link #switchTo} publishes the new log to the writers, then {@link DirtyLog#retire retires}
 * the old one: no mark starts there any more and the marks in progress land. Only then does the
 * session answer, and the old mapping goes. The wait is bounded: past {@link #RETIRE_BOUND} a writer
 * is still inside (a thread that lost its CPU for that long), so the old mapping stays mapped until
 * the session ends (the late mark must not fault) and a warning says the front-end may miss that mark.
 */
final class DirtyLogging implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DirtyLogging.class.getName());

    /** How long a switch waits for marks in progress in the old log (each lasts a few atomic ORs). */
    static final Duration RETIRE_BOUND = Duration.ofSeconds(5);

    /** A log and what unmaps it (the arena and the front-end's fd, owned by the session's mapping code). */
    record Mapped(DirtyLog log, Runnable unmap) { }

    private final String owner;
    private GuestMemory memory = GuestMemory.empty();
    private boolean logAll;
    private Mapped current;
    private final List<Mapped> lingering = new ArrayList<>();   // retired past the bound: unmapped at close
    // What the front-end did with logging in this session (operators and tests: was the log really used?)
    private volatile int basesSet;
    private volatile int logAllEnabled;
    private volatile long pagesMarkedInOldLogs;
    private volatile boolean active;
    private volatile DirtyLog currentLog;

    DirtyLogging(String owner) {
        this.owner = owner;
    }

    /** SET_FEATURES: the front-end's LOG_ALL bit (a valid request's). */
    void logAll(boolean on) {
        if (on && !logAll) logAllEnabled++;
        logAll = on;
        apply();
    }

    /** The device writes through {@code next} from now on (the data path is stopped while the table changes). */
    void memory(GuestMemory next) {
        if (next != memory) memory.setDirtyLog(null);
        memory = next;
        apply();
    }

    /**
     * SET_LOG_BASE: logs into {@code next} from now on; returns once no mark can still land in the
     * previous log, which is then unmapped (see the class comment). Call before answering.
     */
    void switchTo(Mapped next) {
        Mapped old = current;
        current = next;
        currentLog = next.log();
        basesSet++;
        apply();                      // the writers see the new log before the old one is retired
        if (old != null) retire(old);
    }

    /** Logging is on while LOG_ALL is negotiated and a log is set; the memory tells every writer. */
    private void apply() {
        active = logAll && current != null;
        memory.setDirtyLog(active ? current.log() : null);
    }

    private void retire(Mapped old) {
        boolean landed = old.log().retire(RETIRE_BOUND);
        pagesMarkedInOldLogs += old.log().pagesMarked();
        if (landed) {
            old.unmap().run();
        } else {
            lingering.add(old);
            LOG.warning(() -> owner + ": a mark into the replaced dirty log was still in progress after " + RETIRE_BOUND
                    + "; the old log stays mapped until the session ends and the front-end may miss that page");
        }
    }

    /** Dirty logging as the front-end used it; see {@link VhostUserSession.LogActivity}. */
    VhostUserSession.LogActivity activity() {
        DirtyLog l = currentLog;
        long now = l == null ? 0 : l.pagesMarked();
        return new VhostUserSession.LogActivity(basesSet, logAllEnabled, active, pagesMarkedInOldLogs + now);
    }

    /** Stops logging and unmaps every log; the device is stopped by then, so nothing is left to wait for. */
    @Override
    public void close() {
        memory.setDirtyLog(null);
        active = false;
        if (current != null) lingering.add(current);
        current = null;
        for (Mapped m : lingering) {
            if (!m.log().retire(RETIRE_BOUND))
                LOG.warning(() -> owner + ": a dirty-log mark still in progress at session end; unmapping anyway");
            m.unmap().run();   // a writer still inside gets an exception from the closed arena, never a stray write
        }
        lingering.clear();
    }
}
