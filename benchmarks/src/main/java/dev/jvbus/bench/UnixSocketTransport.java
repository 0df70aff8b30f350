package dev.jvbus.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Baseline: an AF_UNIX stream socket between the two processes, one write(2) per message, the
 * reader reading exact frames. The consumer listens on a path from the parent, the producer
 * connects (retrying until the consumer is up). Raw syscalls through FFM, like the pipe, so the
 * two baselines differ only in the kernel object.
 */
public final class UnixSocketTransport implements Transport {
    @Override public String name() { return "socket"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.BLOCK); }
    @Override public boolean baseline() { return true; }

    @Override
    public Setup setup(Case c) throws IOException {
        Path dir = Files.createTempDirectory("jvbus-bench-sock");
        Path sock = dir.resolve("s");
        return new Setup() {
            @Override public List<String> childArgs() { return List.of(sock.toString()); }
            @Override public void close() throws IOException {
                Files.deleteIfExists(sock);
                Files.deleteIfExists(dir);
            }
        };
    }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (true) {
            int fd = Posix.tryConnectUnix(args.getFirst());
            if (fd >= 0) return new FdStream.Writer(fd, c.size());
            if (System.nanoTime() > deadline) throw new IOException("nobody listens on " + args.getFirst());
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
        }
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        int listen = Posix.listenUnix(args.getFirst());
        try {
            return new FdStream.Reader(Posix.accept(listen), c.size());
        } finally {
            Posix.close(listen);
        }
    }
}
