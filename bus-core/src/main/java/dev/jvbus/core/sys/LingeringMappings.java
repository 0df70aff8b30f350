package dev.jvbus.core.sys;

import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The mappings an owner (a connector's sessions) let go that a user still holds: a worker left behind by a
 * bounded stop keeps the memory it may touch mapped ({@link MappingLifetime}). Memory spent for a stuck
 * thread, so operators see it ({@code Exposure.mappedForStuckWorkers}); bounded by the stuck threads, which
 * are counted where they got stuck. Entries leave by themselves once unmapped.
 */
public final class LingeringMappings {
    private final ConcurrentLinkedQueue<MappingLifetime> held = new ConcurrentLinkedQueue<>();

    /** Call after the owner released {@code m} (null: not a lifetime-managed mapping): kept here while a user holds it. */
    public void released(MappingLifetime m) {
        if (m != null && m.outlivedOwner()) held.add(m);
    }

    /** Bytes still mapped for users that outlived their owner. */
    public long bytes() {
        held.removeIf(MappingLifetime::isUnmapped);
        long sum = 0;
        for (MappingLifetime m : held) if (!m.isUnmapped()) sum += m.bytes();
        return sum;
    }

    /** Mappings still held for such users. */
    public int count() {
        held.removeIf(MappingLifetime::isUnmapped);
        return held.size();
    }
}
