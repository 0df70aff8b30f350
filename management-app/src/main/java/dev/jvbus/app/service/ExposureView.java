package dev.jvbus.app.service;

import dev.jvbus.app.store.ExposureKind;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * An exposure as the management plane shows it, in the words an operator creates it with: {@code kind}
 * ({@code shm} or {@code vhost-user}), {@code mode} (vhost-user: {@code server} or {@code client}), what
 * it exposes, the socket, its state and its live sessions, each with the peer the kernel vouches for
 * (SO_PEERCRED) and the features in force on each device it drives, by name.
 */
public record ExposureView(String id, String kind, String mode, String container, Long devid, String path,
                           ExposureState state, List<Session> sessions) {

    /** A peer's session: who (pid, uid, gid from the kernel), since when, and what each device it drives negotiated. */
    public record Session(int pid, int uid, int gid, Instant since, List<DeviceFeatures> devices) { }

    /** The features in force on one device a session drives, by name (none until its driver has negotiated). */
    public record DeviceFeatures(long devid, List<String> negotiated) { }

    /** {@code devices} finds the container's devices, to name their feature bits. */
    static ExposureView of(ExposureInfo i, Function<DevId, Optional<Device>> devices) {
        Optional<ExposureKind> k = ExposureKind.byListed(i.kind());
        return new ExposureView(i.id(), k.map(ExposureKind::connector).orElse(i.kind()), k.map(ExposureKind::mode).orElse(null),
                i.container(), i.devid().map(DevId::unsigned).orElse(null), i.socket().toString(), i.state(),
                i.sessions().stream().map(s -> session(s, devices)).toList());
    }

    private static Session session(SessionInfo s, Function<DevId, Optional<Device>> devices) {
        return new Session(s.pid(), s.uid(), s.gid(), s.since(), s.negotiatedFeatures().entrySet().stream()
                .map((Map.Entry<DevId, Long> e) -> new DeviceFeatures(e.getKey().unsigned(), devices.apply(e.getKey())
                        .map(d -> d.featureCatalog().names(e.getValue()))
                        .orElseGet(() -> List.of(String.format("0x%x", e.getValue())))))   // the device went meanwhile: its bits, unnamed
                .toList());
    }
}
