package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Wire;
import java.time.Duration;
import java.util.Objects;

/**
 * What one front-end may make a vhost-user back-end spend: the operator's settings, with defaults
 * a real front-end (QEMU, DPDK) never meets. Hitting one refuses that request (a failed REPLY_ACK,
 * the reason in the log and {@link VhostUserSession#lastError()}) or drops that connection; the
 * device's next front-end and every other device carry on. Fixed by the protocol, not settings:
 * fds per message (at most {@value Wire#MAX_REGIONS}, VHOST_MEMORY_BASELINE_NREGIONS, and each
 * request's own count) and sessions per socket (one front-end drives a device at a time).
 *
 * @param ownerTimeout how long a new connection may take to send SET_OWNER before it is dropped.
 *        QEMU and DPDK send it within their first few messages, right after connecting; 10 s
 *        allows for a loaded machine and stops a peer that connects and says nothing from holding
 *        the device's only session.
 * @param regionsPerSession memory regions mapped at once (SET_MEM_TABLE carries at most
 *        {@value Wire#MAX_REGIONS}; ADD_MEM_REG adds up to this many, and GET_MAX_MEM_SLOTS reports
 *        it). QEMU uses one region per RAM block; 32 is QEMU's own usual slot count.
 * @param bytesPerSession bytes of front-end memory mapped at once, over all regions; the dirty log
 *        may not exceed it either. Mapping costs the bus address space (128 TiB per process on
 *        x86-64), not RAM: the pages are the guest's. 256 GiB covers all but the largest guests
 *        (raise it for those) and keeps hundreds of devices far from exhausting the address space,
 *        which a sparse memfd claiming 40 TiB would otherwise do on its own.
 * @param inflightBytes size of the inflight buffer a session makes (GET_INFLIGHT_FD) or maps
 *        (SET_INFLIGHT_FD): 16 bytes per ring entry per queue, plus 64. A net device's two queues of
 *        QEMU's largest size (1024) take 33 KiB, the protocol's largest (32768) 1 MiB each; 4 MiB
 *        covers a device of four such queues. It is real memory (a memfd the bus fills), not address
 *        space, hence far below {@code bytesPerSession}.
 */
public record VhostUserLimits(Duration ownerTimeout, int regionsPerSession, long bytesPerSession, long inflightBytes) {

    /** The default {@link #inflightBytes}. */
    public static final long DEFAULT_INFLIGHT_BYTES = 4L << 20;

    public static final VhostUserLimits DEFAULTS = new VhostUserLimits(Duration.ofSeconds(10), Wire.MAX_MEM_SLOTS, 256L << 30, DEFAULT_INFLIGHT_BYTES);

    public VhostUserLimits {
        Objects.requireNonNull(ownerTimeout, "ownerTimeout");
        if (ownerTimeout.isNegative() || ownerTimeout.isZero())
            throw new IllegalArgumentException("ownerTimeout must be positive: " + ownerTimeout);
        if (regionsPerSession < 1) throw new IllegalArgumentException("regionsPerSession must be at least 1: " + regionsPerSession);
        if (bytesPerSession < 1) throw new IllegalArgumentException("bytesPerSession must be at least 1: " + bytesPerSession);
        if (inflightBytes < 1) throw new IllegalArgumentException("inflightBytes must be at least 1: " + inflightBytes);
    }

    /** The limits before inflight tracking, with its default. */
    public VhostUserLimits(Duration ownerTimeout, int regionsPerSession, long bytesPerSession) {
        this(ownerTimeout, regionsPerSession, bytesPerSession, DEFAULT_INFLIGHT_BYTES);
    }

    public VhostUserLimits withOwnerTimeout(Duration d) {
        return new VhostUserLimits(d, regionsPerSession, bytesPerSession, inflightBytes);
    }

    public VhostUserLimits withRegionsPerSession(int n) {
        return new VhostUserLimits(ownerTimeout, n, bytesPerSession, inflightBytes);
    }

    public VhostUserLimits withBytesPerSession(long n) {
        return new VhostUserLimits(ownerTimeout, regionsPerSession, n, inflightBytes);
    }

    public VhostUserLimits withInflightBytes(long n) {
        return new VhostUserLimits(ownerTimeout, regionsPerSession, bytesPerSession, n);
    }
}
