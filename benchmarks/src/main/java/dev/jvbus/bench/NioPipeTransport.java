package dev.jvbus.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Second pipe baseline: the same FIFO as {@link PipeTransport}, but written and read through the
 * JDK ({@link FileChannel} with a direct buffer) instead of raw FFM syscalls. Still one write and
 * one read per message; the difference between the two lines is the JDK's per-call overhead.
 * The ratio lines use {@code pipe} (the cheaper one) as the reference.
 */
public final class NioPipeTransport implements Transport {
    private final PipeTransport fifo = new PipeTransport();

    @Override public String name() { return "pipe-nio"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.BLOCK); }
    @Override public boolean baseline() { return true; }

    @Override
    public Setup setup(Case c) throws IOException { return fifo.setup(c); }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        FileChannel ch = FileChannel.open(Path.of(args.getFirst()), StandardOpenOption.WRITE);
        int size = c.size();
        ByteBuffer bb = ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder());
        UnsafeBuffer view = new UnsafeBuffer(bb);
        Message.init(view, size);
        return new Producer() {
            @Override
            public void send(long seq) throws IOException {
                Message.stamp(view, size, seq);
                bb.clear();
                while (bb.hasRemaining()) ch.write(bb);
            }

            @Override
            public void close() throws IOException { ch.close(); }
        };
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        FileChannel ch = FileChannel.open(Path.of(args.getFirst()), StandardOpenOption.READ);
        int size = c.size();
        ByteBuffer bb = ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder());
        UnsafeBuffer view = new UnsafeBuffer(bb);
        return new Consumer() {
            @Override
            public int receive(MessageSink sink, int max) throws IOException {
                bb.clear();
                while (bb.hasRemaining()) {
                    if (ch.read(bb) < 0) throw new IOException("peer closed the pipe");
                }
                sink.onMessage(view.getLong(0), view.getLong(size - 8), size);
                return 1;
            }

            @Override
            public void close() throws IOException { ch.close(); }
        };
    }
}
