package dev.jvbus.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

/**
 * Baseline: Agrona's {@link OneToOneRingBuffer} over a file in /dev/shm that both child processes
 * map. The producer copies each message from its private buffer into the ring ({@code write});
 * the consumer copies it out into a private buffer in the handler, then checks the stamps.
 * SPIN uses {@link BusySpinIdleStrategy}, BACKOFF the default {@link BackoffIdleStrategy}
 * (10 spins, 20 yields, then parks from 1 us to 1 ms); Agrona has no doorbell, so there is no
 * ADAPTIVE mode here.
 */
public final class AgronaTransport implements Transport {
    private static final int MSG_TYPE = 1;

    @Override public String name() { return "agrona"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.SPIN, WaitMode.BACKOFF); }
    @Override public boolean baseline() { return true; }

    static long mappingSize(Case c) { return (long) c.ringBytes() + RingBufferDescriptor.TRAILER_LENGTH; }

    @Override
    public Setup setup(Case c) throws IOException {
        Path file = Files.createTempFile(Path.of("/dev/shm"), "jvbus-bench-agrona-", ".ring");
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(0);
            ch.write(java.nio.ByteBuffer.allocate(1), mappingSize(c) - 1); // sparse, all zero = empty ring
        }
        return new Setup() {
            @Override public List<String> childArgs() { return List.of(file.toString()); }
            @Override public void close() throws IOException { Files.deleteIfExists(file); }
        };
    }

    private static OneToOneRingBuffer map(Case c, String path) throws IOException {
        long len = mappingSize(c);
        MemorySegment seg;
        try (FileChannel ch = FileChannel.open(Path.of(path), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            seg = ch.map(FileChannel.MapMode.READ_WRITE, 0, len, Arena.global());
        }
        return new OneToOneRingBuffer(new UnsafeBuffer(seg.address(), Math.toIntExact(len)));
    }

    static IdleStrategy idle(WaitMode mode) {
        return switch (mode) {
            case SPIN -> new BusySpinIdleStrategy();
            case BACKOFF -> new BackoffIdleStrategy();
            default -> throw new IllegalArgumentException("agrona has no " + mode + " mode");
        };
    }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        OneToOneRingBuffer ring = map(c, args.getFirst());
        int size = c.size();
        UnsafeBuffer msg = new UnsafeBuffer(new byte[size]);
        Message.init(msg, size);
        IdleStrategy idle = idle(c.mode());
        return seq -> {
            Message.stamp(msg, size, seq);
            if (!ring.write(MSG_TYPE, msg, 0, size)) {
                do {
                    idle.idle();
                } while (!ring.write(MSG_TYPE, msg, 0, size));
                idle.reset();
            }
        };
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        return new RingConsumer(map(c, args.getFirst()), c.size(), idle(c.mode()));
    }

    private static final class RingConsumer implements Consumer, MessageHandler {
        private final OneToOneRingBuffer ring;
        private final IdleStrategy idle;
        private final UnsafeBuffer copy;
        private MessageSink sink;

        RingConsumer(OneToOneRingBuffer ring, int size, IdleStrategy idle) {
            this.ring = ring;
            this.idle = idle;
            this.copy = new UnsafeBuffer(new byte[Math.max(size, Message.MIN_SIZE)]);
        }

        @Override
        public int receive(MessageSink sink, int max) {
            this.sink = sink;
            int n;
            while ((n = ring.read(this, max)) == 0) idle.idle();
            idle.reset();
            return n;
        }

        @Override
        public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
            int len = Math.min(length, copy.capacity());
            buffer.getBytes(index, copy, 0, len);
            sink.onMessage(copy.getLong(0), copy.getLong(len - 8), length);
        }
    }
}
