package dev.jvbus.app.metrics;

import dev.jvbus.net.DropReason;
import dev.jvbus.net.PortBackend;
import dev.jvbus.net.SwitchPort;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The meters of one switch port, over the plain counters its senders and deliveries bump
 * ({@link SwitchPort#framesIn()} ...). Tags: container, network, port ({@code device-<devid>} for a
 * device's port, {@code tap-<ifname>} for a TAP, else the port's name; never a MAC). Direction is the
 * switch's: "in" is what the port sent into the switch, "out" what the switch delivered to it. Drops
 * are registered for every {@link DropReason} from the start, so a rate over them never starts late.
 */
final class PortMeters {
    static final String FRAMES = "jvbus.port.frames";
    static final String BYTES = "jvbus.port.bytes";
    static final String DROPS = "jvbus.port.drops";

    private final MeterRegistry registry;
    private final List<Meter> meters = new ArrayList<>();

    PortMeters(MeterRegistry registry, String container, SwitchPort port) {
        this.registry = registry;
        Tags tags = Tags.of("container", container, "network", port.network().name(), "port", portName(port));
        String frames = "Frames through the port: in = sent by the port into the switch, out = delivered by the switch to the port";
        String bytes = "Bytes of the frames through the port (in: into the switch, out: delivered to the port)";
        meters.add(FunctionCounter.builder(FRAMES, port, SwitchPort::framesIn).tags(tags).tag("direction", "in").description(frames).register(registry));
        meters.add(FunctionCounter.builder(FRAMES, port, SwitchPort::framesOut).tags(tags).tag("direction", "out").description(frames).register(registry));
        meters.add(FunctionCounter.builder(BYTES, port, SwitchPort::bytesIn).tags(tags).tag("direction", "in").baseUnit("bytes")
                .description(bytes).register(registry));
        meters.add(FunctionCounter.builder(BYTES, port, SwitchPort::bytesOut).tags(tags).tag("direction", "out").baseUnit("bytes")
                .description(bytes).register(registry));
        for (DropReason r : DropReason.values())
            meters.add(FunctionCounter.builder(DROPS, port, p -> p.dropped(r)).tags(tags).tag("reason", reason(r))
                    .description("Frames dropped at the port, by reason (for the port's own frames: runt, hairpin, spoofed_source; else frames meant for it)")
                    .register(registry));
    }

    /** The tag value of a drop reason: its name in lower case (no_rx_buffer, spoofed_source ...). */
    static String reason(DropReason r) {
        return r.name().toLowerCase(Locale.ROOT);
    }

    static String portName(SwitchPort port) {
        return switch (port.backend().describe()) {
            case PortBackend.Device d -> "device-" + d.devid();
            case PortBackend.Tap t -> "tap-" + t.ifname();
            case PortBackend.Other o -> o.name();
        };
    }

    void remove() {
        meters.forEach(registry::remove);
        meters.clear();
    }
}
