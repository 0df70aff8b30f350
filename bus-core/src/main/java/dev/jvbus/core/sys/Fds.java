package dev.jvbus.core.sys;

/** Small fd utilities that do not belong to one kind of fd. */
public final class Fds {
    private Fds() {}

    /** Duplicates {@code peerFd} of process {@code pid} into this process (pidfd_getfd, Linux 5.6+). */
    public static int fromPeer(long pid, int peerFd) {
        int pidfd = Errno.check(LibC.pidfd_open(Math.toIntExact(pid), 0), "pidfd_open(" + pid + ")");
        try {
            return Errno.check(LibC.pidfd_getfd(pidfd, peerFd, 0), "pidfd_getfd(" + pid + ", " + peerFd + ")");
        } finally {
            LibC.close(pidfd);
        }
    }

    public static void close(int fd) {
        LibC.close(fd);
    }
}
