package dev.jvbus.core.sys;

import com.sun.jna.Native;

/** Turns a failed C call into an exception that names the call and the errno. */
public final class Errno {
    public static final int ENOENT = 2, EINTR = 4, EBADF = 9, EAGAIN = 11, EINVAL = 22, EPIPE = 32;
    public static final int EPERM = 1, EIO = 5, EACCES = 13, EBUSY = 16, ENODEV = 19, EFAULT = 14, ENOBUFS = 105;
    public static final int ENOMEM = 12, ENFILE = 23, EMFILE = 24, ENOSYS = 38, EOPNOTSUPP = 95;
    public static final int ECONNABORTED = 103, ECONNRESET = 104, ENOTCONN = 107, ECONNREFUSED = 111;

    private Errno() {}

    /** The errno of the last failed native call on this thread. */
    public static int last() {
        return Native.getLastError();
    }

    static int check(int rc, String what) {
        if (rc < 0) throw failure(what, last());
        return rc;
    }

    static long check(long rc, String what) {
        if (rc < 0) throw failure(what, last());
        return rc;
    }

    static SysException failure(String what, int errno) {
        return new SysException(what, errno);
    }

    /** A system call failed; carries the errno. Unchecked: these are environment failures, not guest input. */
    public static final class SysException extends RuntimeException {
        private final int errno;

        SysException(String what, int errno) {
            super(what + " failed: errno " + errno + " (" + describe(errno) + ")");
            this.errno = errno;
        }

        public int errno() { return errno; }

        private static String describe(int errno) {
            // JNA's LastErrorException only says "errno was N" on Linux; strerror names the error.
            // glibc's strerror returns constant strings for known errnos, so it is safe across threads.
            try {
                String text = LibC.strerror(errno);
                return text == null ? "unknown" : text;
            } catch (RuntimeException | LinkageError e) {
                return "unknown";
            }
        }
    }
}
