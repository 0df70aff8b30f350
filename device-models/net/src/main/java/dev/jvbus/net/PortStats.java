package dev.jvbus.net;

import java.util.Map;

/**
 * A snapshot of one switch port's counters. "rx" is what the port sent into the switch, "tx" what
 * the switch delivered to it; drops are frames meant for the port that it could not take, plus the
 * frames the port sent that the switch refused at its ingress (RUNT, HAIRPIN, SPOOFED_SOURCE, BAD_OFFLOAD). A
 * super-frame the switch segmented for the port counts once per segment delivered in tx.
 */
public record PortStats(String port, long rxFrames, long rxBytes, long txFrames, long txBytes, Map<DropReason, Long> drops) {
    public long dropped() {
        return drops.values().stream().mapToLong(Long::longValue).sum();
    }

    public long dropped(DropReason r) {
        return drops.getOrDefault(r, 0L);
    }
}
