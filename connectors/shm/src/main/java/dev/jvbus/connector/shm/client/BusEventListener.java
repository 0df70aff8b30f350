package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.Message;

/**
 * Unasked messages from the bus. Called on the client's reader thread, in arrival order: return
 * quickly and do not make requests from here (their replies arrive on this same thread).
 */
public interface BusEventListener {
    /** DEVADD, DEVDROP or NEEDS_RESET. */
    default void onEvent(Message.Event event) { }

    /** The connection ended; {@code why} is null for an orderly close by this client. */
    default void onDisconnect(BusClientException why) { }

    BusEventListener NONE = new BusEventListener() { };
}
