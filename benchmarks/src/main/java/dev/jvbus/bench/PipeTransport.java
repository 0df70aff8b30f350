package dev.jvbus.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Baseline: a named pipe (mkfifo), one write(2) per message and one read(2) per message. Messages
 * are at most PIPE_BUF (4096) bytes, so each write is atomic and each read returns one whole frame.
 */
public final class PipeTransport implements Transport {
    @Override public String name() { return "pipe"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.BLOCK); }
    @Override public boolean baseline() { return true; }

    @Override
    public Setup setup(Case c) throws IOException {
        if (c.size() > 4096) throw new IllegalArgumentException("pipe messages must fit PIPE_BUF: " + c.size());
        Path dir = Files.createTempDirectory("jvbus-bench-pipe");
        Path fifo = dir.resolve("fifo");
        Posix.mkfifo(fifo.toString());
        return new Setup() {
            @Override public List<String> childArgs() { return List.of(fifo.toString()); }
            @Override public void close() throws IOException {
                Files.deleteIfExists(fifo);
                Files.deleteIfExists(dir);
            }
        };
    }

    // Opening a FIFO blocks until the other end opens it too: that is the rendezvous.
    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        return new FdStream.Writer(Posix.open(args.getFirst(), Posix.O_WRONLY), c.size());
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        return new FdStream.Reader(Posix.open(args.getFirst(), Posix.O_RDONLY), c.size());
    }
}
