package dev.jvbus.connector.shm.server;

import java.time.Duration;
import java.util.Objects;

/**
 * What one client may make the shm connector spend: the operator's settings, with defaults chosen
 * so that a well-behaved client never meets them and a hostile one cannot exhaust the bus for the
 * others. Hitting one refuses that request or that connection with error LIMIT and a message naming
 * the limit; every other session carries on. (Fds per frame are not a setting: the protocol fixes
 * them, see PROTOCOL.md.)
 *
 * @param sessionsPerSocket connections one container's socket serves at once. Each costs two
 *        platform threads and a bounded event outbox; 64 is far more than the processes one tenant
 *        runs, and few enough that one tenant cannot take the bus's threads.
 * @param helloTimeout how long a new connection may take to complete HELLO before it is dropped. A
 *        client sends HELLO right after connecting; 10 s allows for a loaded machine, and stops a
 *        peer that connects and says nothing from holding a session slot and two threads.
 * @param regionsPerSession DEVSHM regions one session may have mapped over all its devices (each
 *        device also takes at most 16). A driver needs one or two per
 *        device; 64 leaves room for several devices.
 * @param bytesPerSession bytes of shared memory one session may have mapped over all its regions.
 *        Mapping costs the bus address space (128 TiB per process on x86-64), not RAM: the pages are
 *        the client's. A client's rings and buffers need megabytes; 4 GiB is generous for them,
 *        and {@code sessionsPerSocket} of them stay far from exhausting the address space, which a
 *        sparse memfd that claims 40 TiB would otherwise do on its own.
 */
public record ShmLimits(int sessionsPerSocket, Duration helloTimeout, int regionsPerSession, long bytesPerSession) {

    public static final ShmLimits DEFAULTS = new ShmLimits(64, Duration.ofSeconds(10), 64, 4L << 30);

    public ShmLimits {
        Objects.requireNonNull(helloTimeout, "helloTimeout");
        if (sessionsPerSocket < 1) throw new IllegalArgumentException("sessionsPerSocket must be at least 1: " + sessionsPerSocket);
        if (helloTimeout.isNegative() || helloTimeout.isZero())
            throw new IllegalArgumentException("helloTimeout must be positive: " + helloTimeout);
        if (regionsPerSession < 1) throw new IllegalArgumentException("regionsPerSession must be at least 1: " + regionsPerSession);
        if (bytesPerSession < 1) throw new IllegalArgumentException("bytesPerSession must be at least 1: " + bytesPerSession);
    }

    public ShmLimits withSessionsPerSocket(int n) {
        return new ShmLimits(n, helloTimeout, regionsPerSession, bytesPerSession);
    }

    public ShmLimits withHelloTimeout(Duration d) {
        return new ShmLimits(sessionsPerSocket, d, regionsPerSession, bytesPerSession);
    }

    public ShmLimits withRegionsPerSession(int n) {
        return new ShmLimits(sessionsPerSocket, helloTimeout, n, bytesPerSession);
    }

    public ShmLimits withBytesPerSession(long n) {
        return new ShmLimits(sessionsPerSocket, helloTimeout, regionsPerSession, n);
    }
}
