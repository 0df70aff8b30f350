package dev.jvbus.connector.shm.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** This process's open fds of interesting kinds, to show the bus closed what a client sent it. */
final class OpenFds {
    private OpenFds() {}

    /** Open fds whose /proc link contains {@code kind} ("eventfd", "memfd:", "socket:"). */
    static long count(String kind) {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().contains(kind);
                } catch (IOException gone) {
                    return false;   // closed while we listed
                }
            }).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
