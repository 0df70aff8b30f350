package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A shared-memory file and a shared mapping of (a window of) it: one this process made
 * ({@link #create}, {@code memfd_create(2)}) or one a peer sent ({@link #adopt}).
 *
 * <p>Mapping is an {@code mmap(2)} of the fd itself, never an open of {@code /proc/self/fd/N}:
 * reopening by path would give the bus the file's rights as the bus's user sees them, not the
 * rights of the fd the peer handed over (see {@link MappingRule}). Ring memory is then plain segment
 * access (VarHandles), never a native call per access.
 *
 * <p>Two lifetimes. A memfd this process {@link #create}s is mapped in a shared {@link Arena} whose closing
 * unmaps it: a thread that touches it afterwards meets an {@link IllegalStateException}. A peer's file
 * ({@link #adopt}, what connectors map for the bus's devices) is mapped in the global scope, so rings over
 * it take the direct path (no scope check per access), and is unmapped by its {@link MappingLifetime}: when
 * the owner has closed it and every user that held it ({@code GuestMemory.hold()}: queue workers, stuck rx
 * deliveries) has let go. Either way it is unmapped and its fd closed exactly once.
 */
public final class Memfd implements AutoCloseable {
    /** The seals {@link #create} puts on its memfds: no shrinking, no growing, and no more seals. */
    static final int CREATE_SEALS = LibC.F_SEAL_SHRINK | LibC.F_SEAL_GROW | LibC.F_SEAL_SEAL;
    private static final long PAGE = LibC.getpagesize();

    private final int fd;
    private final long size;
    private final Arena arena;                 // create(): closing it unmaps; null for adopt()
    private final MappingLifetime lifetime;    // adopt(): its last release unmaps; null for create()
    private final MemorySegment segment;
    private final ShrinkableFile shrinkable;   // adopt() of a file the peer can still shrink; else null
    private final AtomicBoolean closed = new AtomicBoolean();

    /** Maps {@code [offset, offset + size)} of {@code fd} in a shared arena and owns both; if mapping fails, the fd stays the caller's. */
    private Memfd(int fd, long offset, long size) {
        Arena a = Arena.ofShared();
        try {
            this.segment = mmap(fd, offset, size, a);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        this.fd = fd;
        this.size = size;
        this.arena = a;
        this.lifetime = null;
        this.shrinkable = null;
    }

    /** Maps {@code [offset, offset + size)} of {@code fd} in the global scope, unmapped by its lifetime; if mapping fails, the fd stays the caller's. */
    private Memfd(int fd, long offset, long size, String what, MappingRule rule) {
        Pages p = mapPages(fd, offset, size);
        this.fd = fd;
        this.size = size;
        this.arena = null;
        // Global scope: never closed by FFM, so rings over it take the direct path; the lifetime unmaps it
        // (and closes the fd) once, when the owner and every user that held it have let go.
        try {
            this.segment = MemorySegment.ofAddress(p.address()).reinterpret(p.length()).asSlice(p.lead(), size);
        } catch (RuntimeException e) {   // reinterpret is restricted: without native access nothing may stay mapped
            p.unmap();
            throw e;
        }
        // A file sealed against shrinking (QEMU's memfd backend seals by default) can never make us fault.
        int seals = LibC.fcntl(fd, LibC.F_GET_SEALS, 0);
        boolean sealed = rule == MappingRule.SEALED_MEMFD || seals >= 0 && (seals & LibC.F_SEAL_SHRINK) != 0;
        this.shrinkable = sealed ? null : new ShrinkableFile(fd, offset + size);
        this.lifetime = new MappingLifetime(what + " (fd " + fd + ", " + p.length() + " bytes at 0x" + Long.toHexString(p.address()) + ")", size, () -> {
            try {
                p.unmap();
            } finally {
                LibC.close(fd);
            }
        });
    }

    /**
     * Creates a memfd of {@code size} bytes sealed with F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_SEAL:
     * its size is fixed for good, so whoever maps it (the bus: {@link MappingRule#SEALED_MEMFD})
     * can never be made to fault by a truncation. (Nothing in jvbus resizes shared memory; if
     * something ever must, leave F_SEAL_GROW off, never F_SEAL_SHRINK.)
     */
    public static Memfd create(String name, long size) {
        if (size <= 0) throw new IllegalArgumentException("size must be positive: " + size);
        int fd = Errno.check(LibC.memfd_create(name, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), "memfd_create");
        try {
            Errno.check(LibC.ftruncate(fd, size), "ftruncate");
            Errno.check(LibC.fcntl(fd, LibC.F_ADD_SEALS, CREATE_SEALS), "fcntl(F_ADD_SEALS)");
            return new Memfd(fd, 0, size);
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /**
     * Maps {@code [offset, offset + size)} of a file a peer sent and takes the fd, if the fd passes
     * {@code rule} and the window lies inside the file. On refusal ({@link IllegalArgumentException}
     * naming why) or a failed mapping the fd stays the caller's.
     *
     * @param offset where the window starts in the file (need not be page-aligned)
     */
    public static Memfd adopt(OwnedFd fd, long offset, long size, MappingRule rule) {
        checkWindow(rule.check(fd), offset, size);
        Memfd m = new Memfd(fd.number(), offset, size, "peer memory", rule);
        fd.release();   // owned by m now
        return m;
    }

    /**
     * As {@link #adopt}, mapped in a shared arena as {@link #create}d memfds are: {@link #close()} unmaps at
     * once and a late access throws. For memory the rings do not run in and that no user holds (vhost-user's
     * inflight buffer), where a checked access costs nothing that matters.
     */
    public static Memfd adoptClosable(OwnedFd fd, long offset, long size, MappingRule rule) {
        checkWindow(rule.check(fd), offset, size);
        Memfd m = new Memfd(fd.number(), offset, size);
        fd.release();   // owned by m now
        return m;
    }

    /**
     * Maps {@code [offset, offset + size)} of a file a peer sent, checked against {@code rule},
     * without taking the fd: the mapping holds the file by itself, so the caller may close the fd
     * right after. Closing {@code arena} unmaps it.
     */
    public static MemorySegment map(OwnedFd fd, long offset, long size, MappingRule rule, Arena arena) {
        checkWindow(rule.check(fd), offset, size);
        return mmap(fd.number(), offset, size, arena);
    }

    /**
     * Maps a memfd another process holds open: duplicates its fd with {@code pidfd_getfd(2)} (same
     * user, ptrace-permitted), maps that fd like any other and closes the duplicate. For tests and
     * benchmarks that pair two processes without a socket; connectors receive fds with SCM_RIGHTS.
     */
    public static MemorySegment mapPeer(long pid, int peerFd, long size, Arena arena) {
        try (OwnedFd fd = OwnedFd.fromPeer(pid, peerFd)) {
            return map(fd, 0, size, MappingRule.SEALED_MEMFD, arena);
        }
    }

    private static void checkWindow(FdStat file, long offset, long size) {
        if (size <= 0) throw new IllegalArgumentException("size must be positive: " + size);
        if (offset < 0) throw new IllegalArgumentException("offset must not be negative: " + offset);
        // A page past the end of the file would fault on first touch: a SIGBUS in the bus, not an error of the peer.
        if (offset > file.size() || size > file.size() - offset)
            throw new IllegalArgumentException("fd holds " + file.size() + " bytes, fewer than the window [" + offset + ", +" + size + ")");
    }

    /**
     * mmap(2) of {@code [offset, offset + size)}, read-write and shared, as a segment of {@code arena}
     * that unmaps when the arena closes: the window inside the pages {@link #mapPages} maps.
     */
    private static MemorySegment mmap(int fd, long offset, long size, Arena arena) {
        Pages p = mapPages(fd, offset, size);
        MemorySegment whole;
        try {
            // The cleanup captures the numbers, not the segment: it runs once, when the arena closes.
            whole = MemorySegment.ofAddress(p.address()).reinterpret(p.length(), arena, unused -> p.unmap());
        } catch (RuntimeException e) {   // the arena is already closed
            p.unmap();
            throw e;
        }
        return whole.asSlice(p.lead(), size);
    }

    /** Pages mapped by {@link #mapPages}: where, how many bytes, and where the window starts in them. */
    private record Pages(long address, long length, long lead) {
        void unmap() {
            LibC.munmap(address, length);
        }
    }

    /**
     * mmap(2), read-write and shared, of the pages that hold {@code [offset, offset + size)} of {@code fd}: mmap wants a
     * page-aligned offset, so the mapping starts at the page holding {@code offset}, {@code lead} bytes before the window.
     * The one place a Memfd maps; the caller makes the segment and owns the unmap.
     */
    private static Pages mapPages(int fd, long offset, long size) {
        long lead = offset % PAGE;
        long start = offset - lead;
        long length = size + lead;
        long addr = LibC.mmap(0, length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd, start);
        if (addr == LibC.MAP_FAILED)
            throw Errno.failure("mmap(fd " + fd + ", " + length + " bytes at " + start + ")", Errno.last());
        return new Pages(addr, length, lead);
    }

    public int fd() { return fd; }

    /** Bytes of the window mapped. */
    public long size() { return size; }

    /**
     * The mapping. For an adopted file it is in the global scope: touch it only while holding it (its owner
     * not closed, or a {@link #lifetime()} hold); after the unmap an access is a SIGSEGV, not an exception.
     */
    public MemorySegment segment() { return segment; }

    /** What unmaps an adopted file once its users are gone ({@link MappingLifetime}); null for {@link #create}d memfds. */
    public MappingLifetime lifetime() { return lifetime; }

    /**
     * For an adopted file the peer can still shrink under the mapping (not sealed with F_SEAL_SHRINK), the check
     * whether it did; null if it cannot (sealed, or a memfd this process created).
     */
    public ShrinkableFile shrinkable() { return shrinkable; }

    /** The seals on the file now (F_GET_SEALS), or -1 if it cannot carry seals (not a memfd). */
    public int seals() {
        return LibC.fcntl(fd, LibC.F_GET_SEALS, 0);
    }

    /** True if the file cannot shrink under the mapping (F_SEAL_SHRINK), so no peer can make us fault. */
    public boolean shrinkSealed() {
        int seals = seals();
        return seals >= 0 && (seals & LibC.F_SEAL_SHRINK) != 0;
    }

    /**
     * The owner is done with it, once. A created memfd is unmapped and its fd closed now (the segment must no
     * longer be in use by any thread); an adopted file when the last user holding it lets go (at once if none).
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        if (lifetime != null) {
            lifetime.release();
            return;
        }
        try {
            arena.close();
        } finally {
            LibC.close(fd);
        }
    }
}
