package dev.jvbus.core.sys;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What an fd refers to, from {@code statx(2)}: its kind (from {@code st_mode & S_IFMT}), permission
 * bits, owner, inode and size. A connector uses it before trusting an fd a peer sent: a memfd or
 * regular file can be mapped, a socket or a pipe cannot, and a region must not extend past the
 * file's end (touching such a page is a SIGBUS in the bus, not an error in the guest).
 */
public record FdStat(Kind kind, int permissions, int uid, long inode, long size) {

    /** The file type bits of {@code st_mode}. memfds are {@link #REGULAR}; eventfds are {@link #ANONYMOUS}. */
    public enum Kind {
        REGULAR, DIRECTORY, SOCKET, FIFO, CHARACTER_DEVICE, BLOCK_DEVICE, SYMLINK,
        /** An anonymous inode (eventfd, epoll, timerfd ...): the kernel reports no file type for these. */
        ANONYMOUS;

        static Kind ofMode(int mode) {
            return switch (mode & 0xF000) {
                case 0x8000 -> REGULAR;
                case 0x4000 -> DIRECTORY;
                case 0xC000 -> SOCKET;
                case 0x1000 -> FIFO;
                case 0x2000 -> CHARACTER_DEVICE;
                case 0x6000 -> BLOCK_DEVICE;
                case 0xA000 -> SYMLINK;
                default -> ANONYMOUS;
            };
        }
    }

    private static final int MASK = LibC.STATX_TYPE | LibC.STATX_MODE | LibC.STATX_UID | LibC.STATX_INO | LibC.STATX_SIZE;

    /** Describes an open fd (statx with AT_EMPTY_PATH). */
    public static FdStat of(int fd) {
        return statx(fd, "", LibC.AT_EMPTY_PATH, "statx(fd " + fd + ")");
    }

    /** Describes a path without following a final symlink. */
    public static FdStat ofPath(Path path) {
        return statx(LibC.AT_FDCWD, path.toString(), LibC.AT_SYMLINK_NOFOLLOW, "statx(" + path + ")");
    }

    private static FdStat statx(int dirfd, String path, int flags, String what) {
        // Control plane: a short-lived confined buffer per call keeps this thread-safe and simple.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(LibC.STATX_SIZEOF, 8);
            Errno.check(LibC.statx(dirfd, path, flags, MASK, buf.address()), what);
            int mode = Short.toUnsignedInt(buf.get(ValueLayout.JAVA_SHORT, LibC.STATX_MODE_OFFSET));
            return new FdStat(Kind.ofMode(mode), mode & 0xFFF,
                    buf.get(ValueLayout.JAVA_INT, LibC.STATX_UID_OFFSET),
                    buf.get(ValueLayout.JAVA_LONG, LibC.STATX_INO_OFFSET),
                    buf.get(ValueLayout.JAVA_LONG, LibC.STATX_SIZE_OFFSET));
        }
    }

    /** True if {@code fd} is an eventfd (an anonymous inode that /proc names {@code anon_inode:[eventfd]}). */
    public static boolean isEventFd(int fd) {
        try {
            return "anon_inode:[eventfd]".equals(Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString());
        } catch (IOException e) {
            return false;
        }
    }

    /** True for a file that can back guest memory with a shared mapping (a memfd, a shm or hugetlbfs file). */
    public boolean mappable() {
        return kind == Kind.REGULAR;
    }
}
