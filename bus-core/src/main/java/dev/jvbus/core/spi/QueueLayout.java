package dev.jvbus.core.spi;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The queues of a device model, by index. Queue index i is {@code queues().get(i)}; multiqueue
 * models list queue pairs in order (rx0, tx0, rx1, tx1, ..., then control), as virtio-net does.
 */
public record QueueLayout(List<QueueSpec> queues) {
    /**
     * The device parameter that sizes one device's queues: the largest ring any of its queues may have,
     * a power of two no larger than the model's largest queue. A queue the model declares smaller keeps
     * its own maximum.
     */
    public static final String SIZE_PARAM = "queue-size";

    public QueueLayout {
        queues = List.copyOf(queues);
        Set<String> names = new HashSet<>();
        for (QueueSpec q : queues)
            if (!names.add(q.name())) throw new IllegalArgumentException("queue name used twice: " + q.name());
    }

    public static QueueLayout of(QueueSpec... queues) {
        return new QueueLayout(List.of(queues));
    }

    /**
     * The queues of one device made with {@code params}: this layout, each queue held to the
     * {@value #SIZE_PARAM} parameter when it is given. The one place that parameter is checked.
     *
     * @throws IllegalArgumentException naming the parameter and the sizes it may have
     */
    public QueueLayout sizedBy(Map<String, String> params) {
        String given = params.get(SIZE_PARAM);
        if (given == null) return this;
        int largest = largestSize();
        String rule = "a power of two in 1.." + largest;
        int size;
        try {
            size = Integer.parseInt(given.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("parameter '" + SIZE_PARAM + "' must be " + rule + ", not '" + given + "'");
        }
        if (size < 1 || size > largest || Integer.bitCount(size) != 1)
            throw new IllegalArgumentException("parameter '" + SIZE_PARAM + "' must be " + rule + ": " + size);
        return new QueueLayout(queues.stream().map(q -> q.atMost(size)).toList());
    }

    /** The largest size any queue may have. */
    public int largestSize() {
        return queues.stream().mapToInt(QueueSpec::maxSize).max().orElse(0);
    }

    public int count() {
        return queues.size();
    }

    public QueueSpec queue(int index) {
        return queues.get(index);
    }
}
