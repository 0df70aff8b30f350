package dev.jvbus.core.ring;

import dev.jvbus.core.signal.DoorbellWait;
import dev.jvbus.core.sys.EventFd;
import java.util.List;
import java.util.function.Consumer;

/**
 * One thread serving a device's queues: poll while there is work, then arm the doorbells, re-check,
 * and wait (spin briefly, then sleep in epoll) — the loop {@link DoorbellWait} documents. It can be
 * quiesced for a save (it finishes its batch and parks, the rings untouched) and resumed.
 *
 * <p>A {@link QueueFault} from the service stops the worker and is handed to {@code onFault}
 * (which sets the device NEEDS_RESET); any other exception is treated the same way, with the
 * fault reason BAD_DESCRIPTOR, because a worker must never die silently with the device looking live.
 */
public final class QueueWorker implements AutoCloseable {
    private final String name;
    private final QueueService service;
    private final DoorbellWait wait;
    private final Consumer<QueueFault> onFault;
    private final int queue;
    private final Thread thread;

    private volatile boolean stop;
    private volatile boolean quiesceRequested;
    private volatile boolean parked;
    private final Object parkLock = new Object();
    // What ends the spin phase of a wait: made once, not per wait (the worker waits at every idle moment).
    private final java.util.function.BooleanSupplier wakeCondition;

    /**
     * @param queue     the queue index reported in faults that are not ring faults
     * @param doorbells the kicks that wake this worker (not owned: the connector closes them)
     */
    public QueueWorker(String name, int queue, QueueService service, List<EventFd> doorbells,
                       DoorbellWait.Mode mode, Consumer<QueueFault> onFault) {
        this.name = name;
        this.queue = queue;
        this.service = service;
        this.onFault = onFault;
        this.wait = new DoorbellWait(mode, DoorbellWait.DEFAULT_SPIN_NANOS);
        for (EventFd d : doorbells) wait.add(d);
        this.wakeCondition = () -> service.hasWork() || stop || quiesceRequested;
        this.thread = Thread.ofPlatform().name(name).daemon().unstarted(this::run);
    }

    public QueueWorker start() {
        thread.start();
        return this;
    }

    public String name() { return name; }

    public DoorbellWait doorbellWait() { return wait; }

    private void run() {
        try {
            while (!stop) {
                if (quiesceRequested) {
                    parkUntilResumed();
                    continue;
                }
                if (service.poll()) continue;
                if (service.armDoorbell()) {           // work slipped in while arming
                    service.disarmDoorbell();
                    continue;
                }
                DoorbellWait.Outcome o = wait.await(wakeCondition);
                service.disarmDoorbell();
                if (o == DoorbellWait.Outcome.CLOSED) break;
            }
        } catch (QueueFault f) {
            onFault.accept(f);
        } catch (RuntimeException | Error e) {
            onFault.accept(new QueueFault(queue, QueueFault.Reason.BAD_DESCRIPTOR, "worker " + name + " failed: " + e));
        } finally {
            synchronized (parkLock) {
                parked = true;
                parkLock.notifyAll();
            }
        }
    }

    private void parkUntilResumed() {
        synchronized (parkLock) {
            parked = true;
            parkLock.notifyAll();
            while (quiesceRequested && !stop) {
                try {
                    parkLock.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
            parked = false;
        }
    }

    /** Finishes the current batch and parks; returns once the worker no longer touches the rings. */
    public void quiesce() {
        if (Thread.currentThread() == thread) throw new IllegalStateException("a worker cannot quiesce itself");
        quiesceRequested = true;
        wait.wakeup();
        synchronized (parkLock) {
            while (!parked && thread.isAlive()) {
                try {
                    parkLock.wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    public void resume() {
        synchronized (parkLock) {
            quiesceRequested = false;
            parkLock.notifyAll();
        }
    }

    /**
     * Stops the worker. From another thread it waits until the thread has left the rings; from the
     * worker itself (a fault handler resetting the device) it only asks it to stop.
     */
    @Override
    public void close() {
        stop = true;
        resume();
        wait.close();
        if (Thread.currentThread() != thread) {
            try {
                thread.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
