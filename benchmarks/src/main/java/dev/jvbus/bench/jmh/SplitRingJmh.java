package dev.jvbus.bench.jmh;

import dev.jvbus.core.ring.QueueFault;
import java.util.concurrent.TimeUnit;
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
 * In-process, single-thread cost of one message through a virtio split ring, both ends on one thread
 * (AgronaRingJmh's counterpart): the driver copies a message into its slot and adds it (one avail
 * index store per batch of {@link #BATCH}), the device pops it, copies it out and pushes it used
 * (one used index store per batch), the driver collects the used buffers. No cross-core traffic, so
 * this is the rings' own bookkeeping plus two copies, and far steadier than the two-process
 * RingBench on a shared machine: the figure to compare two versions of the ring code by.
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/jvbus-benchmarks.jar
 * org.openjdk.jmh.Main SplitRingJmh -f 1 -wi 3 -i 3}
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SplitRingJmh {
    static final int BATCH = LoopbackSplitRing.BATCH;

    @Param({"16", "1500"})
    int size;

    LoopbackSplitRing ring;

    @Setup
    public void setup() throws QueueFault {
        ring = new LoopbackSplitRing(size);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long batch() throws QueueFault {
        return ring.batch();
    }
}
