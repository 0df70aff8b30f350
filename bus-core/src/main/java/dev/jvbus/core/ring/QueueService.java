package dev.jvbus.core.ring;

/**
 * The work behind one device worker: usually a device's tx queue(s). The worker calls these on
 * its own thread only, so an implementation needs no lock for ring state it alone touches.
 */
public interface QueueService {
    /**
     * Does the work that is there now, in a batch (pop, handle, push used, one notify decision).
     *
     * @return true if it did anything (the worker then polls again before thinking of sleep)
     * @throws QueueFault if the driver broke a ring rule: the worker stops and reports it
     */
    boolean poll() throws QueueFault;

    /** Cheap check for the spin phase: one acquire load of a ring index, no side effects. */
    boolean hasWork();

    /**
     * Asks the driver to ring the doorbell for new work (clear NO_NOTIFY / publish avail_event /
     * enable the shm-signal), with the full fence the ring needs.
     *
     * @return true if work may have arrived meanwhile: do not sleep, poll again
     */
    boolean armDoorbell();

    /** Back to polling: the driver need not ring while we are busy. */
    void disarmDoorbell();
}
