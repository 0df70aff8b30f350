package dev.jvbus.app.service;

import dev.jvbus.app.RuntimeDir;
import dev.jvbus.core.sys.UnixConnection;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * Where an exposure's socket may be: the one place that checks a socket path an operator (or the
 * topology store) gives. A socket goes <em>directly</em> into the runtime directory (a bare name such as
 * {@code vm1.sock} means a socket there) or into a directory the operator approved with
 * {@code jvbus.exposures.socket-dirs} (absolute paths, comma-separated), and nowhere else.
 *
 * <p>Why so strict: the bus binds a server-mode socket (replacing a stale one there) and removes it when
 * the exposure closes, and in client mode it connects wherever it is told and speaks vhost-user there. An
 * API user who could name any path could make the bus delete or shadow another program's socket, or talk to
 * a daemon's control socket. So nothing is followed silently: a path with {@code .} or {@code ..} parts is
 * refused, not normalised; the directory is compared by its real path, so a symbolic link inside an allowed
 * directory that leads out of it is refused; a socket path that is itself a symbolic link is refused; and a
 * path too long for {@code sun_path} is refused rather than cut. What is accepted is returned as the real
 * directory plus the name, the path the socket is then made at and listed under.
 */
@Component
public class SocketPaths {
    /** {@code sun_path} is 108 bytes, with the terminating NUL. */
    static final int MAX_BYTES = 107;

    private final Path runtimeDir;
    private final List<Path> approved;

    public SocketPaths(RuntimeDir runtimeDir, @Value("${jvbus.exposures.socket-dirs:}") List<String> approved) {
        this.runtimeDir = runtimeDir.path().toAbsolutePath().normalize();
        List<Path> dirs = new ArrayList<>();
        for (String d : approved) {
            if (d.isBlank()) continue;
            Path p = Path.of(d.trim());
            if (!p.isAbsolute())
                throw new IllegalStateException("jvbus.exposures.socket-dirs: '" + d + "' is not an absolute path");
            dirs.add(p.normalize());
        }
        this.approved = List.copyOf(dirs);
    }

    public Path runtimeDir() {
        return runtimeDir;
    }

    /** The runtime directory, then the operator's approved directories: where sockets may go. */
    public List<Path> allowedDirs() {
        List<Path> all = new ArrayList<>();
        all.add(runtimeDir);
        all.addAll(approved);
        return all;
    }

    /**
     * The socket path {@code given} names, if it is allowed: a bare name is a socket in the runtime
     * directory, an absolute path must sit directly in an allowed directory.
     *
     * @throws OperationRefused SOCKET_PATH_NOT_ALLOWED saying which rule and where sockets may go
     */
    public Path resolve(String given) {
        if (given == null || given.isBlank())
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"path\" is empty; give a socket name (in the runtime directory "
                    + runtimeDir + ") or an absolute path in " + allowedDirs(), Map.of("field", "path"));
        Path p;
        try {
            p = Path.of(given);
        } catch (InvalidPathException e) {
            throw notAllowed(given, "it is not a valid path (" + e.getReason() + ")");
        }
        for (Path part : p)
            if (part.toString().equals("..") || part.toString().equals("."))
                throw notAllowed(given, "it has a '" + part + "' part; give the plain path, jvbus does not resolve one");
        Path abs = p.isAbsolute() ? p : runtimeDir.resolve(p);
        if (abs.getFileName() == null) throw notAllowed(given, "it names no file");
        Path dir = realDirectory(abs.getParent())
                .orElseThrow(() -> notAllowed(given, "its directory " + abs.getParent() + " does not exist"));
        if (allowedDirs().stream().map(SocketPaths::realDirectory).noneMatch(r -> r.isPresent() && r.get().equals(dir)))
            throw notAllowed(given, dir.equals(abs.getParent()) ? "it is not directly in " + placesText()
                    : "its directory " + abs.getParent() + " is really " + dir + ", which is not directly in " + placesText());
        Path socket = dir.resolve(abs.getFileName());
        if (Files.isSymbolicLink(socket)) throw notAllowed(given, socket + " is a symbolic link; jvbus never follows one to a socket");
        if (socket.toString().getBytes(StandardCharsets.UTF_8).length > MAX_BYTES)
            throw notAllowed(given, socket + " is longer than the " + MAX_BYTES + " bytes an AF_UNIX socket path may have");
        return socket;
    }

    /**
     * Server mode binds at {@code socket}: only a socket left by an earlier run (nobody accepts on it) may
     * be replaced; another kind of file is refused, and so is a socket something listens on.
     */
    public void checkFreeToListen(Path socket) {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException absent) {
            return;
        }
        if (!a.isOther())   // a socket is neither a file, a directory nor a link
            throw notAllowed(socket.toString(), "it exists and is " + (a.isDirectory() ? "a directory" : a.isSymbolicLink()
                    ? "a symbolic link" : "a regular file") + ", not a socket; jvbus replaces only a socket an earlier run left");
        UnixConnection live;
        try {
            live = UnixConnection.connect(socket);
        } catch (RuntimeException refused) {
            return;   // ECONNREFUSED: nobody listens; the file is a leftover the connector replaces
        }
        live.close();
        throw new OperationRefused(ProblemType.NAME_TAKEN, "another process listens on " + socket
                + " (a connection was accepted); choose another path", Map.of("field", "path", "path", socket.toString()));
    }

    /** {@code p} as the absolute, normalised path the API compares sockets by (the real directory where it exists). */
    public static Path canonical(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        return abs.getParent() == null ? abs : realDirectory(abs.getParent()).map(d -> d.resolve(abs.getFileName())).orElse(abs);
    }

    /** Whether {@code given} (a bare name in {@code dir}, or absolute) names {@code socket}; false for no valid path at all. */
    static boolean sameSocket(Path dir, String given, Path socket) {
        try {
            return canonical(dir.resolve(given)).equals(canonical(socket));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private static Optional<Path> realDirectory(Path dir) {
        try {
            Path real = dir.toRealPath();
            return Files.isDirectory(real) ? Optional.of(real) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private String placesText() {
        return "the runtime directory " + runtimeDir + (approved.isEmpty()
                ? " (the operator approves other directories with jvbus.exposures.socket-dirs)"
                : " or a directory the operator approved (jvbus.exposures.socket-dirs: " + approved + ")");
    }

    private OperationRefused notAllowed(String given, String why) {
        return new OperationRefused(ProblemType.SOCKET_PATH_NOT_ALLOWED, "socket path '" + given + "' is not allowed: " + why,
                Map.of("field", "path", "allowed", allowedDirs().stream().map(Path::toString).toList()));
    }
}
