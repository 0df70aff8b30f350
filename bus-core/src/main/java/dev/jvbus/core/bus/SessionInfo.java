package dev.jvbus.core.bus;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * One live session of an {@link Exposure}, as listing shows it. The peer's pid, uid and gid are the
 * kernel's (SO_PEERCRED), not anything the peer said; in client mode the peer is the front-end that
 * listens. {@code negotiatedFeatures} holds, per device the session drives, the feature bits in force
 * (0 until the driver has negotiated); a session that opened no device has none.
 */
public record SessionInfo(int pid, int uid, int gid, Instant since, Map<DevId, Long> negotiatedFeatures) {
    public SessionInfo {
        Objects.requireNonNull(since, "since");
        negotiatedFeatures = Collections.unmodifiableMap(new TreeMap<>(negotiatedFeatures));
    }
}
