package dev.jvbus.connector.vhostuser.protocol;

/**
 * A front-end message broke the protocol or asked for something this back-end refuses. If
 * {@link #fatal()} the stream cannot continue (the header itself was impossible) and the
 * session closes; otherwise the request fails (a non-zero REPLY_ACK when asked) and the
 * session goes on.
 */
public final class VhostUserException extends Exception {
    private final boolean fatal;

    public VhostUserException(String message, boolean fatal) {
        super(message, null, false, false);
        this.fatal = fatal;
    }

    public static VhostUserException refuse(String message) {
        return new VhostUserException(message, false);
    }

    public static VhostUserException fatal(String message) {
        return new VhostUserException(message, true);
    }

    public boolean fatal() { return fatal; }
}
