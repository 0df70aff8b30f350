package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * What a hostile peer does with the fds it hands the bus, for tests (here, beside {@code LibC},
 * because only the sys package calls the kernel): opens a file {@code O_PATH} or read-only, makes a
 * memfd with whatever seals it likes, and, on an eventfd it shares with the bus (SCM_RIGHTS shares
 * the open file description), clears {@code O_NONBLOCK} and fills the counter so that a write by the
 * bus would block. Plain fd numbers: the caller closes them with {@link #close(int)}. Shared with the
 * connectors' tests through bus-core's test jar (the hostile-peers harness).
 */
public final class PeerSideFds {
    /** open(2)'s O_PATH (the same value on x86-64 and aarch64): names a file, grants no access to it. */
    private static final int O_PATH = 0x200000;
    public static final int SEAL_SEAL = LibC.F_SEAL_SEAL, SEAL_SHRINK = LibC.F_SEAL_SHRINK;
    /** The most an eventfd counter can hold; a write that would go past it blocks (or fails EAGAIN if non-blocking). */
    public static final long EVENTFD_MAX = 0xffff_ffff_ffff_fffeL;

    private PeerSideFds() {}

    /** {@code open(path, O_PATH)}. */
    public static int openPath(Path path) {
        return Errno.check(LibC.open(path.toString(), O_PATH | LibC.O_CLOEXEC), "open(" + path + ", O_PATH)");
    }

    /** {@code open(path, O_RDONLY)}. */
    public static int openReadOnly(Path path) {
        return Errno.check(LibC.open(path.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC), "open(" + path + ", O_RDONLY)");
    }

    /** A memfd of {@code size} bytes (sparse: nothing is mapped or touched here) carrying exactly {@code seals}. */
    public static int memfd(String name, long size, int seals) {
        int fd = Errno.check(LibC.memfd_create(name, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), "memfd_create");
        try {
            Errno.check(LibC.ftruncate(fd, size), "ftruncate");
            if (seals != 0) Errno.check(LibC.fcntl(fd, LibC.F_ADD_SEALS, seals), "fcntl(F_ADD_SEALS)");
            return fd;
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /**
     * Fills the counter of an eventfd the bus writes to, then clears O_NONBLOCK on its description:
     * from then on a write(2) of 1 by anyone sharing the description blocks until someone reads.
     */
    public static void wedge(int eventFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment word = arena.allocate(8, 8);
            LibC.read(eventFd, word.address(), 8);                 // empties it (EAGAIN if it was empty): still non-blocking here
            word.set(ValueLayout.JAVA_LONG, 0, EVENTFD_MAX);
            if (LibC.write(eventFd, word.address(), 8) != 8) throw Errno.failure("eventfd write", Errno.last());
        }
        int flags = Errno.check(LibC.fcntl(eventFd, LibC.F_GETFL, 0), "fcntl(F_GETFL)");
        Errno.check(LibC.fcntl(eventFd, LibC.F_SETFL, flags & ~LibC.O_NONBLOCK), "fcntl(F_SETFL)");
    }

    /** Reads the counter once (blocking if the description is blocking and the counter is 0): unwedges a writer. */
    public static long drain(int eventFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment word = arena.allocate(8, 8);
            return LibC.read(eventFd, word.address(), 8) == 8 ? word.get(ValueLayout.JAVA_LONG, 0) : 0;
        }
    }

    public static void close(int fd) {
        LibC.close(fd);
    }
}
