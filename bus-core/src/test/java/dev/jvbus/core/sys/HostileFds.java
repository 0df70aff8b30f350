package dev.jvbus.core.sys;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Fds a hostile peer might pass, made for tests (here, beside {@code LibC}, because only the sys
 * package calls the kernel): a path handle, a read-only file, memfds with too few seals. Shared
 * with the connectors' tests through bus-core's test jar.
 */
public final class HostileFds {
    public static final int SEAL_SEAL = LibC.F_SEAL_SEAL, SEAL_SHRINK = LibC.F_SEAL_SHRINK, SEAL_GROW = LibC.F_SEAL_GROW;

    private HostileFds() {}

    /** {@code open(path, O_PATH)}: names the file, grants no access to it. */
    public static OwnedFd openPath(Path path) {
        return OwnedFd.of(Errno.check(LibC.open(path.toString(), LibC.O_PATH | LibC.O_CLOEXEC), "open(" + path + ", O_PATH)"));
    }

    /**
     * Writes {@code text} to {@code file} and makes it {@code r--------}: a file a peer may open and pass
     * but must not get written through us (the bus may run as root, and reopening it by path, through
     * /proc, would then succeed read-write). Returns the bytes, to check afterwards that it is unchanged.
     */
    public static byte[] readOnlyFile(Path file, String text) throws IOException {
        byte[] content = text.getBytes(StandardCharsets.US_ASCII);
        Files.write(file, content);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("r--------"));
        return content;
    }

    /** {@code open(path, O_RDONLY)}. */
    public static OwnedFd openReadOnly(Path path) {
        return OwnedFd.of(Errno.check(LibC.open(path.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC), "open(" + path + ", O_RDONLY)"));
    }

    /** {@code open(path, O_RDWR)}. */
    public static OwnedFd openReadWrite(Path path) {
        return OwnedFd.of(Errno.check(LibC.open(path.toString(), LibC.O_RDWR | LibC.O_CLOEXEC), "open(" + path + ", O_RDWR)"));
    }

    /** A memfd of {@code size} bytes carrying exactly {@code seals} (0: none, as a careless client makes it). */
    public static OwnedFd memfd(String name, long size, int seals) {
        OwnedFd fd = OwnedFd.of(Errno.check(LibC.memfd_create(name, LibC.MFD_CLOEXEC | LibC.MFD_ALLOW_SEALING), "memfd_create"));
        try {
            Errno.check(LibC.ftruncate(fd.number(), size), "ftruncate");
            if (seals != 0) Errno.check(LibC.fcntl(fd.number(), LibC.F_ADD_SEALS, seals), "fcntl(F_ADD_SEALS)");
            return fd;
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /** ftruncate(2): what a peer does to pull memory away under a mapping. Returns the C result (negative if refused). */
    public static int truncate(int fd, long size) {
        return LibC.ftruncate(fd, size);
    }

    /** True if {@code fd} is open in this process. */
    public static boolean isOpen(int fd) {
        return LibC.fcntl(fd, LibC.F_GETFL, 0) >= 0;
    }
}
