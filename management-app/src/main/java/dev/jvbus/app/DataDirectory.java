package dev.jvbus.app;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * Where the app keeps what must survive a restart (the admin password's hash; the topology store):
 * {@code --jvbus.data-dir}, by default {@code $XDG_STATE_HOME/jvbus} or {@code ~/.local/state/jvbus}.
 * One directory, so a person backs it up by copying it.
 */
@Component
public class DataDirectory {
    private final Path path;

    DataDirectory(@Value("${jvbus.data-dir:}") String configured) {
        this.path = configured.isBlank() ? defaultPath() : Path.of(configured);
    }

    public Path path() {
        return path;
    }

    /**
     * Replaces {@code file} with {@code content} so that a crash leaves the old file or the new one,
     * never half: written beside it (owner-only before any byte is in it), forced to disk, renamed
     * over it, and the directory forced so the rename itself is on disk. The directory is made
     * owner-only when missing.
     */
    public static void replaceOwnerOnly(Path file, byte[] content) throws IOException {
        Path dir = file.getParent();
        Path tmp = dir.resolve(file.getFileName() + ".new");
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
            ch.write(ByteBuffer.wrap(content));
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private static Path defaultPath() {
        String xdg = System.getenv("XDG_STATE_HOME");
        Path state = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "state");
        return state.resolve("jvbus");
    }
}
