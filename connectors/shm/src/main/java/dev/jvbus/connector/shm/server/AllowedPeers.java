package dev.jvbus.connector.shm.server;

import dev.jvbus.core.sys.PeerCredentials;
import java.util.Set;

/**
 * Which local users may connect to one container's socket, checked against the uid the kernel
 * recorded for the peer (SO_PEERCRED) — the peer cannot lie about it. The socket file's mode
 * (0600) already keeps other users out unless they are root or the operator loosened it; this check
 * is the one that holds even then.
 */
public record AllowedPeers(Set<Integer> uids) {
    public AllowedPeers {
        uids = Set.copyOf(uids);
        if (uids.isEmpty()) throw new IllegalArgumentException("a container socket must allow at least one uid");
    }

    /** Only the user the bus runs as (the default). */
    public static AllowedPeers busOwner() {
        return new AllowedPeers(Set.of(PeerCredentials.ofThisProcess().uid()));
    }

    public static AllowedPeers uids(Integer... uids) {
        return new AllowedPeers(Set.of(uids));
    }

    public boolean permits(PeerCredentials peer) {
        return uids.contains(peer.uid());
    }
}
