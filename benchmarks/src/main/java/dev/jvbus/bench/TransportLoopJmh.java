package dev.jvbus.bench;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * In-process, single-thread cost (ns) of one message through a cross-process transport's own
 * producer and consumer code (the classes the harness runs in two JVMs), in SPIN mode: send
 * {@link #BATCH} messages, then receive them, in one thread. Both sides attach to the same memfd and
 * eventfds (two mappings, as across processes), so this is the CPU per message of the ring code plus
 * the two copies, without cross-core traffic: the cleanest signal for ring hot-path changes.
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
 * -cp benchmarks/target/jvbus-benchmarks.jar org.openjdk.jmh.Main TransportLoopJmh -p transport=split,ioq,agrona -p size=16}
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class TransportLoopJmh {
    static final int BATCH = 64;

    @Param({"split", "ioq", "agrona"})
    String transport;

    @Param({"16", "1500"})
    int size;

    Transport.Setup setup;
    Transport.Producer producer;
    Transport.Consumer consumer;
    Message.Checker checker;
    long seq;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        Transport t = RingBench.transport(transport);
        Transport.Case c = new Transport.Case(size, WaitMode.SPIN, 256 * 1024);
        setup = t.setup(c);
        List<String> args = setup.childArgs();
        if (transport.equals("ioq")) {          // the IOQ driver (producer) lays out the ring the device checks
            producer = t.attachProducer(c, args);
            consumer = t.attachConsumer(c, args);
        } else {
            consumer = t.attachConsumer(c, args);
            producer = t.attachProducer(c, args);
        }
        checker = new Message.Checker(size);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        producer.close();
        consumer.close();
        setup.close();
        if (checker.errors() != 0) throw new IllegalStateException(checker.errors() + " sequence errors");
    }

    /** Score = ns per message (send + receive). */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long sendThenReceive() throws IOException {
        for (int i = 0; i < BATCH; i++) producer.send(seq++);
        producer.flush();
        int n = 0;
        while (n < BATCH) n += consumer.receive(checker, BATCH - n);
        return n;
    }
}
