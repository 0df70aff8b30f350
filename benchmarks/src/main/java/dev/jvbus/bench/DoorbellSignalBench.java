package dev.jvbus.bench;

import dev.jvbus.core.sys.EventFd;
import java.lang.management.ManagementFactory;
import java.util.Arrays;

/**
 * What a doorbell signal costs now that a peer's eventfd is signalled through io_uring (a NOP whose
 * completion signals the registered eventfd in the kernel) instead of write(2): the cost of
 * {@link EventFd#signal()} on an eventfd of our own (write, as every signal was before) against one
 * adopted from a "peer" (the same description, duplicated into this process with pidfd_getfd, as a
 * connector receives it). One thread, nobody waiting on the eventfd, nothing drained (the counter
 * has room for 2^64 signals).
 *
 * <p>Rounds alternate which side goes first; each round gives a ratio (io_uring / write) and the
 * report is the median ratio with its spread, so drift on a shared machine hits both sides alike.
 * Also prints bytes allocated per signal on each path (the JVM's per-thread counter).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/jvbus-benchmarks.jar
 * dev.jvbus.bench.DoorbellSignalBench [rounds] [signals per round]}
 */
public final class DoorbellSignalBench {
    private DoorbellSignalBench() {}

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 31;
        int perRound = args.length > 1 ? Integer.parseInt(args[1]) : 200_000;
        try (EventFd ours = EventFd.create();
             EventFd shared = EventFd.create();
             EventFd peers = EventFd.fromPeer(ProcessHandle.current().pid(), shared.fd())) {
            // Warm-up: compile both paths, and set up the ring (made by the first signal).
            for (int i = 0; i < 5; i++) {
                time(ours, perRound / 4);
                time(peers, perRound / 4);
            }
            double[] writeNs = new double[rounds], uringNs = new double[rounds], ratio = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                if ((r & 1) == 0) {
                    writeNs[r] = time(ours, perRound);
                    uringNs[r] = time(peers, perRound);
                } else {
                    uringNs[r] = time(peers, perRound);
                    writeNs[r] = time(ours, perRound);
                }
                ratio[r] = uringNs[r] / writeNs[r];
            }
            System.out.printf("EventFd.signal(), %d rounds x %d signals, one thread, ns per signal%n", rounds, perRound);
            System.out.printf("  write(2) (our eventfd):    median %7.1f  [min %.1f, max %.1f]%n", median(writeNs), min(writeNs), max(writeNs));
            System.out.printf("  io_uring NOP (peer's):     median %7.1f  [min %.1f, max %.1f]%n", median(uringNs), min(uringNs), max(uringNs));
            double[] sorted = ratio.clone();
            Arrays.sort(sorted);
            System.out.printf("  ratio io_uring / write:    median %.2f  [p25 %.2f, p75 %.2f, min %.2f, max %.2f]%n",
                    median(ratio), sorted[rounds / 4], sorted[(3 * rounds) / 4], sorted[0], sorted[rounds - 1]);
            System.out.printf("  bytes allocated per signal: write %.3f, io_uring %.3f%n",
                    allocatedPerSignal(ours, perRound), allocatedPerSignal(peers, perRound));
            long counted = shared.drain();
            System.out.printf("  (peer's eventfd counted %d signals)%n", counted);
        }
    }

    private static double time(EventFd e, int n) {
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) e.signal();
        return (System.nanoTime() - t0) / (double) n;
    }

    private static double allocatedPerSignal(EventFd e, int n) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < n; i++) e.signal();
        return (threads.getCurrentThreadAllocatedBytes() - before) / (double) n;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    private static double min(double[] v) { return Arrays.stream(v).min().orElseThrow(); }

    private static double max(double[] v) { return Arrays.stream(v).max().orElseThrow(); }
}
