package dev.jvbus.core.bus;

/** Where an {@link Exposure} is in its life. */
public enum ExposureState {
    /** Its socket is bound and waits for a peer; nobody is connected. */
    LISTENING,
    /** At least one peer is connected and has a session. */
    CONNECTED,
    /** Client mode: the peer (a listening front-end) is absent; the connector keeps trying to reach it. */
    RECONNECTING,
    /** Closed: its sessions ended, its socket is gone, and its registry no longer lists it. Final. */
    CLOSED
}
