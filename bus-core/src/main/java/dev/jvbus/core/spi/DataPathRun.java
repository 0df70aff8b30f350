package dev.jvbus.core.spi;

/**
 * One run of a device's data path: from the start that made it (DRIVER_OK, or resume after a
 * restore) to the next reset, NEEDS_RESET, FAILED or unplug. A model gets it in {@link QueueSet#run()}
 * and reports what its workers and deliveries find through it.
 *
 * <p>Why a handle and not a plain call: the data path runs on threads the control plane waits for.
 * A control thread holds the device's lock while it waits for a worker to park (pause) or stop
 * (reset), and a delivery holds a switch port's lock; a report that took the device's lock in place
 * would deadlock there. A report that lands after the run ended (the driver reset meanwhile) must not
 * mark the next driver's session. This handle does both: it never blocks its caller, and the device
 * checks, under its lock, that the run is still the current one before it acts.
 */
public interface DataPathRun {

    /**
     * True until this run ends. One volatile read: a worker checks it before it touches a ring again
     * after a call that may have taken long (a delivery into another device), so a worker left behind
     * by a reset never writes into the rings of the next run.
     */
    boolean isCurrent();

    /**
     * The driver broke a rule the data path found (a bad ring, say): the device goes NEEDS_RESET and
     * its driver is told, unless this run has ended by the time the report lands. Safe from any thread,
     * under any lock: it never blocks and never takes the device's lock on the caller's thread (the
     * report is handed to a short-lived thread). Only the first report of a run is acted on, so a guest
     * cannot make the bus start threads without bound.
     */
    void needsReset(String reason);

    /** A run that is never current, for functions started outside a device (tests, tools). */
    DataPathRun NONE = new DataPathRun() {
        @Override public boolean isCurrent() { return false; }

        @Override public void needsReset(String reason) { }
    };
}
