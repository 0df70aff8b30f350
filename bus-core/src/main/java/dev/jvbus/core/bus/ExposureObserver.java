package dev.jvbus.core.bus;

/**
 * Who wants to know when a container's exposures open and close and when their peers come and go:
 * the management plane's event stream. Registered with {@link Exposures#watch}. Called on the thread
 * that caused it (an operator's, a connector's acceptor or session thread), outside every lock of the
 * registry; an observer must not block, and what it throws is logged and dropped, so a broken observer
 * never holds up a connector or another observer.
 */
public interface ExposureObserver {
    /** {@code e} was opened and is listed from now on. */
    default void opened(Exposure e) { }

    /** {@code e} closed and left the list (its device was removed, its container destroyed, or it was closed). */
    default void closed(Exposure e) { }

    /** A peer of {@code e} got a session; {@code s} is the session as listing shows it at its start. */
    default void sessionOpened(Exposure e, SessionInfo s) { }

    /** That session ended (the peer hung up, or was hung up on); {@code s} as at its end. */
    default void sessionClosed(Exposure e, SessionInfo s) { }
}
