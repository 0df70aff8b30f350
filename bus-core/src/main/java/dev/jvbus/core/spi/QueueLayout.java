package dev.jvbus.core.spi;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The queues of a device model, by index. Queue index i is {@code queues().get(i)}; multiqueue
 * models list queue pairs in order (rx0, tx0, rx1, tx1, ..., then control), as virtio-net does.
 */
public record QueueLayout(List<QueueSpec> queues) {
    public QueueLayout {
        queues = List.copyOf(queues);
        Set<String> names = new HashSet<>();
        for (QueueSpec q : queues)
            if (!names.add(q.name())) throw new IllegalArgumentException("queue name used twice: " + q.name());
    }

    public static QueueLayout of(QueueSpec... queues) {
        return new QueueLayout(List.of(queues));
    }

    public int count() {
        return queues.size();
    }

    public QueueSpec queue(int index) {
        return queues.get(index);
    }
}
