package dev.jvbus.core.sys;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An anonymous shared-memory file ({@code memfd_create(2)}) and its shared mapping.
 *
 * <p>Mapping goes through the JDK ({@link FileChannel#map(FileChannel.MapMode, long, long, Arena)}
 * on {@code /proc/self/fd/N}), so ring memory is a plain {@link MemorySegment} read with
 * VarHandles, never a native call per access. The same path maps an fd received from another
 * process (SCM_RIGHTS) or opened through {@code /proc/<pid>/fd/<n>}.
 */
public final class Memfd implements AutoCloseable {
    private final int fd;
    private final long size;
    private final Arena arena;
    private final MemorySegment segment;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Memfd(int fd, long size) {
        this.fd = fd;
        this.size = size;
        this.arena = Arena.ofShared();
        this.segment = map(fd, size, arena);
    }

    /** Creates a memfd of {@code size} bytes, sealed against shrinking so a peer cannot SIGBUS us. */
    public static Memfd create(String name, long size) {
        if (size <= 0) throw new IllegalArgumentException("size must be positive: " + size);
        int fd = Errno.check(LibC.memfd_create(name, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), "memfd_create");
        try {
            Errno.check(LibC.ftruncate(fd, size), "ftruncate");
            Errno.check(LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK), "fcntl(F_ADD_SEALS)");
            return new Memfd(fd, size);
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /**
     * Maps an fd this process already holds (received by SCM_RIGHTS, say) and takes ownership of it.
     *
     * <p>Refuses (with {@link IllegalArgumentException}, leaving the fd the caller's) anything that
     * is not a regular file (a memfd is one; a socket, pipe or eventfd is not) and a {@code size}
     * larger than the file: a page past the end of the file would fault on first touch, which is a
     * SIGBUS in the bus rather than an error of the peer. For the same reason it then tries to seal
     * the file against shrinking (possible for a memfd created with MFD_ALLOW_SEALING and no
     * F_SEAL_SEAL); {@link #shrinkSealed()} says whether the file is protected, so a connector can
     * refuse memory the peer could still pull away.
     */
    public static Memfd adopt(int fd, long size) {
        if (size <= 0) throw new IllegalArgumentException("size must be positive: " + size);
        FdStat stat = FdStat.of(fd);
        if (!stat.mappable()) {
            throw new IllegalArgumentException("fd " + fd + " is a " + stat.kind() + ", not a memfd or regular file");
        }
        if (size > stat.size()) {
            throw new IllegalArgumentException("fd " + fd + " holds " + stat.size() + " bytes, fewer than the " + size + " asked for");
        }
        if (!hasShrinkSeal(fd)) LibC.fcntl(fd, LibC.F_ADD_SEALS, LibC.F_SEAL_SHRINK); // best effort, checked below
        return new Memfd(fd, size);
    }

    private static boolean hasShrinkSeal(int fd) {
        int seals = LibC.fcntl(fd, LibC.F_GET_SEALS, 0); // EINVAL for files that cannot be sealed
        return seals >= 0 && (seals & LibC.F_SEAL_SHRINK) != 0;
    }

    /** Maps {@code size} bytes of an fd without taking ownership of the fd. */
    public static MemorySegment map(int fd, long size, Arena arena) {
        return map(fd, 0, size, arena);
    }

    /**
     * Maps {@code size} bytes of an fd from {@code offset} (vhost-user regions start at an mmap offset
     * into the front-end's memory file). The caller checks {@code offset + size} against the file size.
     */
    public static MemorySegment map(int fd, long offset, long size, Arena arena) {
        Path path = Path.of("/proc/self/fd/" + fd);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return ch.map(FileChannel.MapMode.READ_WRITE, offset, size, arena);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map fd " + fd + " (" + size + " bytes at " + offset + ")", e);
        }
    }

    /** Maps a file another process holds open, through {@code /proc/<pid>/fd/<fd>} (same user only). */
    public static MemorySegment mapPeer(long pid, int peerFd, long size, Arena arena) {
        Path path = Path.of("/proc/" + pid + "/fd/" + peerFd);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return ch.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + path + " (" + size + " bytes)", e);
        }
    }

    public int fd() { return fd; }

    public long size() { return size; }

    public MemorySegment segment() { return segment; }

    /** True if the file cannot shrink under the mapping (F_SEAL_SHRINK), so no peer can make us fault. */
    public boolean shrinkSealed() { return hasShrinkSeal(fd); }

    /** Unmaps and closes the fd, once; the segment must no longer be in use by any thread. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        arena.close();
        LibC.close(fd);
    }
}
