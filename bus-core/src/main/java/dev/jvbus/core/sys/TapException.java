package dev.jvbus.core.sys;

/**
 * A TAP could not be created or configured, with a message that says what is missing (a
 * capability, /dev/net/tun, the namespace) rather than only an errno. Carries the errno.
 */
public final class TapException extends RuntimeException {
    private final int errno;

    TapException(String message, int errno) {
        super(message + " [errno " + errno + ": " + strerror(errno) + "]");
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }

    private static String strerror(int errno) {
        try {
            String s = LibC.strerror(errno);
            return s == null ? "unknown" : s;
        } catch (RuntimeException | LinkageError e) {
            return "unknown";
        }
    }
}
