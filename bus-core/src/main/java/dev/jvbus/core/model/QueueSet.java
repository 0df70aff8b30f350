package dev.jvbus.core.model;

import dev.jvbus.core.memory.GuestMemory;
import java.util.List;

/**
 * What a model gets at DRIVER_OK (or on resume after a restore): the guest memory, the features
 * in force, and every queue the driver set up and enabled, by index.
 */
public record QueueSet(GuestMemory memory, long features, List<QueueBinding> queues) {
    public QueueSet {
        queues = List.copyOf(queues);
    }

    public java.util.Optional<QueueBinding> queue(int index) {
        return queues.stream().filter(q -> q.index() == index).findFirst();
    }
}
