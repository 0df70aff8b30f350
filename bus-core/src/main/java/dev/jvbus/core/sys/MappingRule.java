package dev.jvbus.core.sys;

/**
 * What the bus asks of a file a peer hands it to map as shared memory. Every fd a peer passes is
 * hostile until checked: the bus maps the fd it received (never a path to it, which would reopen
 * the file with the bus's own rights), and only if that fd already grants what the mapping uses.
 *
 * <p>Both rules refuse, with a message that says why:
 * <ul>
 *   <li>anything but a regular file (a memfd, a tmpfs or hugetlbfs file): a socket, pipe, device
 *       or eventfd is not memory;</li>
 *   <li>an {@code O_PATH} fd: it names a file without granting any access to it;</li>
 *   <li>an access mode other than {@code O_RDWR}: devices write to shared memory, so mapping a
 *       read-only fd read-write would let a peer make the bus write into a file the peer itself may
 *       only read (another user's key, {@code /etc/shadow} when the bus runs as root).</li>
 * </ul>
 */
public enum MappingRule {
    /**
     * A regular file opened read-write. For vhost-user front-ends (QEMU's memory backends, DPDK's
     * hugepage files), whose files are not sealed: such a file can still be truncated under the
     * mapping, and the bus's next access to a page past the new end faults (SIGBUS, which the JVM
     * reports as an {@link InternalError} on that access). The connector says how it contains that.
     */
    SHARED_FILE,
    /**
     * As {@link #SHARED_FILE}, and a memfd sealed with {@code F_SEAL_SHRINK} and {@code F_SEAL_SEAL}:
     * it can never shrink under the mapping (so no peer can make the bus fault) and its seals are
     * final. The shm connector's rule; {@link Memfd#create} makes such memfds.
     */
    SEALED_MEMFD;

    /** The seals {@link #SEALED_MEMFD} requires. */
    public static final int REQUIRED_SEALS = LibC.F_SEAL_SHRINK | LibC.F_SEAL_SEAL;

    private static final String SEALED_MEMFD_TEXT = "the bus maps only a memfd sealed with F_SEAL_SHRINK and F_SEAL_SEAL "
            + "(a file that can shrink under the mapping would crash the bus with SIGBUS)";

    /**
     * Checks {@code fd} against this rule; the fd stays the caller's either way.
     *
     * @return what the fd refers to (its size bounds what may be mapped)
     * @throws IllegalArgumentException naming what is wrong (the text starts with "fd ...")
     */
    public FdStat check(OwnedFd fd) {
        int n = fd.number();
        int flags = LibC.fcntl(n, LibC.F_GETFL, 0);
        if (flags < 0) throw new IllegalArgumentException("fd cannot be inspected: fcntl(F_GETFL) errno " + Errno.last());
        if ((flags & LibC.O_PATH) != 0)
            throw new IllegalArgumentException("fd was opened O_PATH: it names a file without granting access to it; "
                    + "pass a file opened O_RDWR");
        FdStat stat = FdStat.of(n);
        if (!stat.mappable())
            throw new IllegalArgumentException("fd is a " + stat.kind() + ", not a memfd or regular file");
        int mode = flags & LibC.O_ACCMODE;
        if (mode != LibC.O_RDWR)
            throw new IllegalArgumentException("fd was opened " + (mode == LibC.O_RDONLY ? "O_RDONLY" : mode == 1 ? "O_WRONLY" : "with access mode " + mode)
                    + ", not O_RDWR: devices write to shared memory, and the bus never uses a file with more rights "
                    + "than the fd it was given");
        if (this == SEALED_MEMFD) {
            int seals = LibC.fcntl(n, LibC.F_GET_SEALS, 0);
            if (seals < 0)
                throw new IllegalArgumentException("fd is not a memfd (it cannot carry seals): " + SEALED_MEMFD_TEXT);
            if ((seals & LibC.F_SEAL_SHRINK) == 0)
                throw new IllegalArgumentException("fd is not sealed with F_SEAL_SHRINK: " + SEALED_MEMFD_TEXT);
            if ((seals & LibC.F_SEAL_SEAL) == 0)
                throw new IllegalArgumentException("fd is sealed with F_SEAL_SHRINK but not F_SEAL_SEAL, so its seals are not final: "
                        + SEALED_MEMFD_TEXT);
        }
        return stat;
    }
}
