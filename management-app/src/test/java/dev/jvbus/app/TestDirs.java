package dev.jvbus.app;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Directories a test app owns alone: fresh for each test JVM, so no run sees another's store or sockets. */
public final class TestDirs {
    private TestDirs() { }

    public static Path fresh(String prefix) {
        try {
            return Files.createTempDirectory(prefix);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
