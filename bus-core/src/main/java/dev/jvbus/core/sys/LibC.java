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
    static final int F_DUPFD_CLOEXEC = 1024 + 6;
    static final int F_ADD_SEALS = 1024 + 9;
    static final int F_GET_SEALS = 1024 + 10;
    static final int F_SEAL_SEAL = 0x1, F_SEAL_SHRINK = 0x2, F_SEAL_GROW = 0x4;

    // eventfd(2) flags
    static final int EFD_CLOEXEC = O_CLOEXEC;
    static final int EFD_NONBLOCK = O_NONBLOCK;

    // fcntl(2) F_GETFL: the access mode of an open file description, and O_PATH (a handle that
    // names a file without opening it for I/O; mmap refuses it).
    static final int O_ACCMODE = 0x3, O_PATH = 0x200000;

    // mmap(2)
    static final int PROT_READ = 0x1, PROT_WRITE = 0x2, MAP_SHARED = 0x1;
    static final long MAP_FAILED = -1L;

    static native int memfd_create(String name, int flags);
    static native long mmap(long addr, long length, int prot, int flags, int fd, long offset);
    static native int munmap(long addr, long length);
    static native int ftruncate(int fd, long length);
    static native int fcntl(int fd, int cmd, int arg);
    static native int close(int fd);
    static native int dup(int fd);
    static native int eventfd(int initval, int flags);
    static native long read(int fd, long buf, long count);
    static native long write(int fd, long buf, long count);
    static native int getpid();
    static native int getpagesize();
    static native int pidfd_open(int pid, int flags);
    static native int pidfd_getfd(int pidfd, int targetfd, int flags);
    static native int getuid();
    static native int getgid();
    static native String strerror(int errnum);

    // Calls that never wait on an fd a peer shares, whatever its O_NONBLOCK (see EventFd and IoUringSignal).
    // preadv2(2) with RWF_NOWAIT: non-blocking for this one call, not through the shared file status flags.
    static final int RWF_NOWAIT = 0x8;
    static final short POLLIN = 0x1, POLLOUT = 0x4; // poll(2) is declared with epoll below
    static final int POLLFD_SIZE = 8, POLLFD_REVENTS_OFFSET = 6; // struct pollfd { int fd; short events, revents; }

    static native long preadv2(int fd, long iov, int iovcnt, long offset, int flags);

    // io_uring(7) has no glibc wrappers, so it goes through syscall(2) (declared with six fixed arguments:
    // glibc's syscall only moves registers and the stack slot, so the variadic prototype costs nothing).
    // These numbers come from the common table that every architecture added after 5.1 shares, x86-64 included.
    static final long SYS_IO_URING_SETUP = 425, SYS_IO_URING_ENTER = 426, SYS_IO_URING_REGISTER = 427;
    static final int MAP_POPULATE = 0x8000; // with mmap(2) above

    static native long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    // epoll(7). struct epoll_event is packed on x86-64 (12 bytes: u32 events, u64 data at offset 4)
    // and naturally aligned elsewhere (16 bytes, data at offset 8); Epoll reads both through these.
    static final int EPOLL_CLOEXEC = O_CLOEXEC;
    static final int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
    static final boolean EPOLL_PACKED = "x86_64".equals(System.getProperty("os.arch"))
            || "amd64".equals(System.getProperty("os.arch"));
    static final int EPOLL_EVENT_SIZE = EPOLL_PACKED ? 12 : 16;
    static final int EPOLL_EVENT_DATA_OFFSET = EPOLL_PACKED ? 4 : 8;

    static native int epoll_create1(int flags);
    // poll(2): struct pollfd is {int fd; short events; short revents;} on every architecture.
    static final short POLLERR = 0x8, POLLHUP = 0x10, POLLRDHUP = 0x2000;
    static native int poll(long fds, long nfds, int timeoutMillis);
    static native int epoll_ctl(int epfd, int op, int fd, long event);
    static native int epoll_wait(int epfd, long events, int maxevents, int timeoutMillis);

    // AF_UNIX sockets, socket(7), unix(7). Layouts are those of LP64 Linux (x86-64, aarch64, riscv64).
    static final int AF_UNIX = 1;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = O_CLOEXEC, SOCK_NONBLOCK = O_NONBLOCK;
    static final int SOL_SOCKET = 1, SO_PEERCRED = 17, SCM_RIGHTS = 1;
    static final int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    static final int MSG_CTRUNC = 0x8, MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
    /** The kernel's per-message limit on passed fds (SCM_MAX_FD). */
    static final int SCM_MAX_FD = 253;
    static final int SUN_PATH_MAX = 108;
    static final int F_GETFL = 3, F_SETFL = 4;

    static native int socket(int domain, int type, int protocol);
    static native int socketpair(int domain, int type, int protocol, int[] sv);
    static native int bind(int fd, long addr, int addrlen);
    static native int listen(int fd, int backlog);
    static native int accept4(int fd, long addr, long addrlen, int flags);
    static native int connect(int fd, long addr, int addrlen);
    static native long sendmsg(int fd, long msghdr, int flags);
    static native long recvmsg(int fd, long msghdr, int flags);
    static native int getsockopt(int fd, int level, int optname, long optval, long optlen);
    static native int shutdown(int fd, int how);
    static native int chmod(String path, int mode);
    static native int unlink(String path);

    // TUN/TAP (Documentation/networking/tuntap.rst, include/uapi/linux/if_tun.h) and network
    // namespaces (setns(2)). ioctl(2) is variadic in C; its third argument is a pointer or an
    // integer, passed here as a long, which is how every LP64 ABI passes both.
    static final int O_RDONLY = 0, O_RDWR = 2;
    static final int CLONE_NEWNET = 0x40000000;
    static final long TUNSETIFF = 0x400454caL, TUNSETOFFLOAD = 0x400454d0L, TUNGETFEATURES = 0x800454cfL,
            TUNGETVNETHDRSZ = 0x800454d7L, TUNSETVNETHDRSZ = 0x400454d8L;
    static final short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
    static final long SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914;
    static final short IFF_UP = 0x1;
    /** struct ifreq on LP64: char ifr_name[IFNAMSIZ = 16], then a 24-byte union (ifr_flags is its first short). */
    static final int IFREQ_SIZE = 40, IFNAMSIZ = 16, IFREQ_FLAGS_OFFSET = 16;
    static final int AF_INET = 2, SOCK_DGRAM = 2;

    static native int open(String path, int flags);
    static native int setns(int fd, int nstype);
    static native int ioctl(int fd, long request, long arg);
    static native long writev(int fd, long iov, int iovcnt);

    // statx(2): one layout on every architecture, unlike struct stat, and exported by glibc >= 2.28.
    static final int AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000, AT_SYMLINK_NOFOLLOW = 0x100;
    static final int STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8, STATX_INO = 0x100, STATX_SIZE = 0x200;
    static final int STATX_SIZEOF = 256;
    static final int STATX_UID_OFFSET = 20, STATX_MODE_OFFSET = 28, STATX_INO_OFFSET = 32, STATX_SIZE_OFFSET = 40;

    static native int statx(int dirfd, String path, int flags, int mask, long buf);
}
