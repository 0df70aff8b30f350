package dev.jvbus.core.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** What this process has mapped now, as the kernel lists it ({@code /proc/self/maps}). */
public final class ProcMaps {
    private ProcMaps() {}

    /** Mappings of the memfd named {@code name} (the kernel lists them as {@code /memfd:name (deleted)}). */
    public static long mappingsOfMemfd(String name) {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps")).stream()
                    .filter(l -> l.endsWith("/memfd:" + name) || l.endsWith("/memfd:" + name + " (deleted)"))
                    .count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
