package dev.jvbus.core.sys;

import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * The C library calls jvbus needs, bound with JNA direct mapping (one native call per method,
 * no varargs, no per-call reflection). Only the {@code sys} package calls this class; the rest
 * of the bus uses the small typed wrappers beside it ({@link Memfd}, {@link EventFd}, ...).
 *
 * <p>Every method returns the raw C result; callers check it with {@link Errno#check}.
 */
final class LibC {
    static {
        if (!Platform.isLinux()) throw new UnsupportedOperationException("jvbus needs Linux (memfd, eventfd, epoll)");
        Native.register(LibC.class, Platform.C_LIBRARY_NAME);
    }

    private LibC() {}

    static final int O_CLOEXEC = 0x80000;
    static final int O_NONBLOCK = 0x800;

    // memfd_create(2) flags and fcntl(2) seals
    static final int MFD_CLOEXEC = 0x1;
    static final int MFD_ALLOW_SEALING = 0x2;
    static final int F_ADD_SEALS = 1024 + 9;
    static final int F_GET_SEALS = 1024 + 10;
    static final int F_SEAL_SEAL = 0x1, F_SEAL_SHRINK = 0x2, F_SEAL_GROW = 0x4;

    // eventfd(2) flags
    static final int EFD_CLOEXEC = O_CLOEXEC;
    static final int EFD_NONBLOCK = O_NONBLOCK;

    static native int memfd_create(String name, int flags);
    static native int ftruncate(int fd, long length);
    static native int fcntl(int fd, int cmd, int arg);
    static native int close(int fd);
    static native int dup(int fd);
    static native int eventfd(int initval, int flags);
    static native long read(int fd, long buf, long count);
    static native long write(int fd, long buf, long count);
    static native int getpid();
    static native int pidfd_open(int pid, int flags);
    static native int pidfd_getfd(int pidfd, int targetfd, int flags);
    static native int getuid();
}
