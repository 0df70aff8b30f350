package dev.jvbus.core.sys;

/** Small socket calls shared by {@link UnixListener} and {@link UnixConnection}. */
final class Sockets {
    private Sockets() {}

    static void setNonBlocking(int fd, boolean nonBlocking) {
        int flags = Errno.check(LibC.fcntl(fd, LibC.F_GETFL, 0), "fcntl(F_GETFL)");
        int wanted = nonBlocking ? flags | LibC.O_NONBLOCK : flags & ~LibC.O_NONBLOCK;
        if (wanted != flags) Errno.check(LibC.fcntl(fd, LibC.F_SETFL, wanted), "fcntl(F_SETFL)");
    }
}
