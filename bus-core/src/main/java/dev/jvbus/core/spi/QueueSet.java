package dev.jvbus.core.spi;

import dev.jvbus.core.memory.GuestMemory;
import java.util.List;

/**
 * What a model gets at DRIVER_OK (or on resume after a restore): the guest memory, the features
 * in force, every queue the driver set up and enabled, by index, and the run of the data path that
 * starts now (through which its workers and deliveries report faults, see {@link DataPathRun}).
 */
public record QueueSet(GuestMemory memory, long features, List<QueueBinding> queues, DataPathRun run) {
    public QueueSet {
        queues = List.copyOf(queues);
        java.util.Objects.requireNonNull(run, "run");
    }

    public java.util.Optional<QueueBinding> queue(int index) {
        return queues.stream().filter(q -> q.index() == index).findFirst();
    }
}
