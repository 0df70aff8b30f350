package dev.jvbus.bench.jmh;

import dev.jvbus.bench.Message;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * In-process, single-thread cost of one message through Agrona's OneToOneRingBuffer: copy in
 * (write), then read it back and copy it out, in batches of {@link #BATCH}. No cross-core traffic:
 * this is the floor of the ring's own bookkeeping plus two copies. Template for the jvbus rings:
 * copy this class, swap the ring for the driver side (add) and device side (pop + push used).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
 * -cp benchmarks/target/jvbus-benchmarks.jar org.openjdk.jmh.Main AgronaRingJmh -f 1 -wi 3 -i 3}
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 3, time = 1)
public class AgronaRingJmh {
    static final int BATCH = 64;

    @Param({"16", "1500"})
    int size;

    OneToOneRingBuffer ring;
    UnsafeBuffer msg;
    UnsafeBuffer copy;
    long seq;
    long sum;
    final MessageHandler handler = this::onMessage;

    @Setup
    public void setup() {
        ring = new OneToOneRingBuffer(new UnsafeBuffer(
                ByteBuffer.allocateDirect(256 * 1024 + RingBufferDescriptor.TRAILER_LENGTH)));
        msg = new UnsafeBuffer(new byte[size]);
        copy = new UnsafeBuffer(new byte[size]);
        Message.init(msg, size);
    }

    private void onMessage(int type, MutableDirectBuffer buffer, int index, int length) {
        buffer.getBytes(index, copy, 0, length);
        sum += copy.getLong(0) ^ copy.getLong(length - 8);
    }

    /** Score = messages per microsecond (write + read of one message). */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long writeThenRead() {
        for (int i = 0; i < BATCH; i++) {
            Message.stamp(msg, size, seq++);
            if (!ring.write(1, msg, 0, size)) throw new IllegalStateException("ring full");
        }
        int n = 0;
        while (n < BATCH) n += ring.read(handler, BATCH - n);
        return sum;
    }
}
