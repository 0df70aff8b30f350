package dev.jvbus.model.virtionet;

import dev.jvbus.net.DropReason;
import java.util.List;
import java.util.Map;

/**
 * One virtio-net device's counters. tx = frames the driver sent (handed to the switch); rx = frames
 * written into the driver's rx buffers. Drops on rx are also counted by the switch port, by reason.
 *
 * @param txDropTooBig   tx frames longer than MTU + 18 (Ethernet header and one VLAN tag), or than 64 KiB + 18 for a
 *                       super-frame of a driver granted HOST_TSO/USO
 * @param txDropGso      tx frames whose GSO header the driver was not granted (HOST_TSO4/6, HOST_ECN, HOST_USO), or
 *                       that does not describe its frame (see {@link dev.jvbus.net.FrameOffload#check})
 * @param txDropBadCsum  tx frames with NEEDS_CSUM whose csum_start/csum_offset point past the frame
 * @param txDropInactive tx frames discarded while their tx queue was started but disabled (vhost-user)
 * @param notifications  interrupts sent to the driver (used-buffer notifications, all queues)
 * @param rxStuckCloses  times stopping rx gave up on a delivery stuck past the rx gate's bound
 * @param workersLeftBehind tx workers a reset could not stop within the bound (stuck in a delivery);
 *                       each exits when its call returns, touching no ring
 * @param pairs          per queue pair (multiqueue), in pair order: what each rx and tx queue carried (the totals
 *                       above are their sums)
 */
public record VirtioNetStats(long txFrames, long txBytes, long txDropTooBig, long txDropGso, long txDropBadCsum,
                             long txDropInactive, long rxFrames, long rxBytes, Map<DropReason, Long> rxDrops, long notifications,
                             long rxStuckCloses, long workersLeftBehind, List<Pair> pairs) {
    public VirtioNetStats {
        rxDrops = Map.copyOf(rxDrops);
        pairs = List.copyOf(pairs);
    }

    /** What queue pair {@code pair} carried: frames written into rx queue {@code pair}, frames its tx queue sent. */
    public record Pair(int pair, long rxFrames, long rxBytes, long txFrames, long txBytes) { }

    public long rxDropped(DropReason r) {
        return rxDrops.getOrDefault(r, 0L);
    }
}
