package dev.jvbus.connector.shm.server;

import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.sys.UnixConnection;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The operator's directory for container sockets. It must be ours and writable by nobody else:
 * someone who can write the directory can rename our socket away and put their own in its place,
 * which no mode on the socket file prevents.
 */
final class RuntimeDirectory {
    private RuntimeDirectory() {}

    /** Creates the directory (0700) if missing; refuses one that is not ours or that others may write. */
    static Path prepare(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        try {
            if (!Files.exists(abs, LinkOption.NOFOLLOW_LINKS)) {
                Files.createDirectories(abs);
                Files.setPosixFilePermissions(abs, PosixFilePermissions.fromString("rwx------"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the runtime directory " + abs, e);
        }
        FdStat st = FdStat.ofPath(abs);
        if (st.kind() != FdStat.Kind.DIRECTORY)
            throw new BusException("runtime directory " + abs + " is a " + st.kind() + ", not a directory (give the real path, not a link)");
        int me = PeerCredentials.ofThisProcess().uid();
        if (st.uid() != me)
            throw new BusException("runtime directory " + abs + " belongs to uid " + st.uid() + ", not to the bus (uid " + me + ")");
        if ((st.permissions() & 0022) != 0)
            throw new BusException("runtime directory " + abs + " has mode " + Integer.toOctalString(st.permissions())
                    + "; others could replace the sockets in it: use 0700");
        return abs;
    }

    /**
     * Clears the way for a socket at {@code path}: a socket left by a dead bus is removed; a live one
     * (something accepts connections) or any other kind of file is refused.
     */
    static void clearStaleSocket(Path path) {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) return;
        FdStat st = FdStat.ofPath(path);
        if (st.kind() != FdStat.Kind.SOCKET)
            throw new BusException(path + " exists and is a " + st.kind() + ", not a socket; refusing to replace it");
        try (UnixConnection live = UnixConnection.connect(path)) {
            throw new BusException(path + " is served by another bus (a connection was accepted)");
        } catch (RuntimeException refused) {
            if (refused instanceof BusException) throw refused;
            // ECONNREFUSED: nobody listens; the file is a leftover.
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove stale socket " + path, e);
        }
    }
}
