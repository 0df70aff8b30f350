package dev.jvbus.connector.shm.client;

import dev.jvbus.core.model.QueueConfig;
import dev.jvbus.core.sys.EventFd;

/**
 * One queue as the client set it up: where its split ring lives in {@link DriverMemory}, and its
 * two doorbells — {@code kick} (the client rings it, the device waits on it) and {@code call} (the
 * device rings it, the client waits on it). The bus holds duplicates of both fds.
 *
 * <p>TODO(data path): once the split ring's driver side lands ({@code dev.jvbus.core.ring.virtio}),
 * this gains {@code add(buffers)} / {@code collect()} over the ring memory, kicking only when the
 * ring says the device wants a kick (event idx), so a busy queue moves buffers with no syscall each.
 */
public record ClientQueue(QueueConfig config, EventFd kick, EventFd call) implements AutoCloseable {
    public int index() { return config.index(); }

    public int size() { return config.size(); }

    /** Split ring area sizes (virtio 1.x 2.7), event-idx fields included. */
    public static long descTableBytes(int size) { return 16L * size; }

    public static long availRingBytes(int size) { return 6L + 2L * size; }

    public static long usedRingBytes(int size) { return 6L + 8L * size; }

    @Override
    public void close() {
        kick.close();
        call.close();
    }
}
