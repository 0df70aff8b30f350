package dev.jvbus.connector.shm.client;

import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.sys.EventFd;

/**
 * One queue as the client set it up: the driver side of its split ring in {@link DriverMemory},
 * and its two doorbells — {@code kick} (the client rings it, the device waits on it) and
 * {@code call} (the device rings it, the client waits on it). The bus holds duplicates of both fds.
 *
 * <p>The data path is the ring's: {@link #add} and {@link #pollUsed} touch only shared memory; a
 * kick is sent only when the device asked for one (event idx / NO_NOTIFY), and {@link #awaitUsed}
 * sleeps on the call eventfd only after re-arming interrupts and finding nothing. A busy queue thus
 * moves many buffers per syscall. One thread owns a queue.
 */
public final class ClientQueue implements AutoCloseable {
    private final QueueConfig config;
    private final EventFd kick;
    private final EventFd call;
    private final SplitVirtqueueDriver driver;
    private DoorbellWait wait;   // made on first sleep, by the owning thread

    ClientQueue(QueueConfig config, EventFd kick, EventFd call, SplitVirtqueueDriver driver) {
        this.config = config;
        this.kick = kick;
        this.call = call;
        this.driver = driver;
    }

    public QueueConfig config() { return config; }

    public int index() { return config.index(); }

    public int size() { return config.size(); }

    public EventFd kickFd() { return kick; }

    public EventFd callFd() { return call; }

    /** The ring itself, for callers that want every knob (indirect tables, delayed interrupts, counters). */
    public SplitVirtqueueDriver driver() { return driver; }

    /** Offers a chain; returns its head id, or -1 if the ring is full (collect first). Does not kick. */
    public int add(BufferList buffers) throws QueueFault {
        return driver.add(buffers);
    }

    /** Kicks the device if it asked for it; call once per batch of adds. */
    public boolean kickIfNeeded() {
        return driver.kickIfNeeded();
    }

    /** The next used element ({@code id << 32 | len}) or -1; see {@link SplitVirtqueueDriver#usedId}. */
    public long pollUsed() throws QueueFault {
        return driver.pollUsed();
    }

    /**
     * Waits until used buffers are pending: spins briefly, then re-arms interrupts, re-checks, and
     * only then sleeps on the call eventfd (the lost-wakeup order of {@link DoorbellWait}).
     *
     * @return true if used buffers are pending, false on timeout
     */
    public boolean awaitUsed(long timeoutNanos) {
        if (driver.hasUsed()) return true;
        if (wait == null) {
            wait = new DoorbellWait();
            wait.add(call);
        }
        long deadline = System.nanoTime() + timeoutNanos;
        while (true) {
            if (driver.enableInterrupts()) {
                driver.disableInterrupts();
                return true;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) return false;
            DoorbellWait.Outcome o = wait.await(driver::hasUsed, left);
            driver.disableInterrupts();
            if (driver.hasUsed()) return true;
            if (o == DoorbellWait.Outcome.CLOSED) return false;
        }
    }

    @Override
    public void close() {
        if (wait != null) wait.close();
        kick.close();
        call.close();
    }

    @Override
    public String toString() { return "ClientQueue[" + config + ", " + driver + "]"; }
}
