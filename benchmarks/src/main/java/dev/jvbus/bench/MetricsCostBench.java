package dev.jvbus.bench;

import dev.jvbus.bench.jmh.LoopbackSplitRing;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.RingPosition;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.ToIntFunction;

/**
 * What the metrics cost the data path (issue 15): ring throughput with the management app's kind of
 * meters registered over the ring's {@link QueueCounters} and {@link RingPosition} in a Prometheus
 * registry, scraped every second on another thread, against the same ring without a registry.
 *
 * <p>The ring is SplitRingJmh's (both ends of a virtio split ring on one thread, batches of 64, the
 * device's counters bound as a device binds them), so the figure is the ring's own: steadier than two
 * processes on a shared machine. "With metrics" registers, per queue, what {@code QueueMeters} in
 * management-app registers (buffers, bytes, kicks, notifications sent and suppressed as
 * FunctionCounters; available, in flight and size as Gauges reading the running ring) for the
 * measured queue and {@code --queues - 1} idle ones (a bus of that many queues: the scrape's size), and
 * a thread scrapes the registry to text every second, as Prometheus does. The data path is the same
 * code in both: it bumps its plain fields whether anyone reads them or not.
 *
 * <p>Rounds alternate which mode goes first; each round's ratio is with/without, and the figure is the
 * median ratio with its spread (min, interquartile range, max). Not a test: nothing here asserts on time.
 *
 * <pre>./jvbus bench --metrics [--rounds 12] [--round-seconds 2] [--sizes 16,1500] [--queues 64]</pre>
 */
public final class MetricsCostBench {
    static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    /** Messages per second of wall-clock time and per second of the ring thread's CPU time. */
    record Rate(double wall, double cpu) { }

    private MetricsCostBench() { }

    public static void main(String[] args) throws Exception {
        int rounds = 12, queues = 64;
        double roundSeconds = 2;
        List<Integer> sizes = List.of(16, 1500);
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--round-seconds" -> roundSeconds = Double.parseDouble(args[++i]);
                case "--queues" -> queues = Integer.parseInt(args[++i]);
                case "--sizes" -> sizes = Arrays.stream(args[++i].split(",")).map(Integer::parseInt).toList();
                default -> {
                    System.err.println("usage: ./jvbus bench --metrics [--rounds 12] [--round-seconds 2] [--sizes 16,1500] [--queues 64]");
                    System.exit(2);
                }
            }
        }
        long roundNanos = (long) (roundSeconds * 1e9);
        System.out.printf(Locale.ROOT, "metrics cost: %d rounds of %.1f s per mode, %d queues' meters, scraped every 1 s%n", rounds, roundSeconds, queues);
        System.out.printf(Locale.ROOT, "%6s %-5s %12s %12s %8s %8s %8s %8s %8s  %s%n", "size", "clock", "without M/s", "with M/s",
                "ratio", "min", "q1", "q3", "max", "cost (1 - median of with/without per round)");
        for (int size : sizes) {
            Ring ring = new Ring(size);
            ring.run(TimeUnit.SECONDS.toNanos(2));   // warm-up: JIT the loop before any round
            try (Metrics warm = new Metrics(ring, queues)) {
                ring.run(TimeUnit.SECONDS.toNanos(1));
            }
            Rate[] without = new Rate[rounds], with = new Rate[rounds];
            long scrapes = 0, scrapeCpu = 0;
            for (int r = 0; r < rounds; r++) {
                boolean metricsFirst = (r & 1) == 1;
                for (int leg = 0; leg < 2; leg++) {
                    boolean on = (leg == 0) == metricsFirst;
                    if (on) {
                        try (Metrics m = new Metrics(ring, queues)) {
                            with[r] = ring.run(roundNanos);
                            m.stop();
                            scrapes += m.scrapes;
                            scrapeCpu += m.cpuNanos;
                        }
                    } else {
                        without[r] = ring.run(roundNanos);
                    }
                }
            }
            print(size, "wall", without, with, Rate::wall);
            print(size, "cpu", without, with, Rate::cpu);
            System.out.printf(Locale.ROOT, "%5dB scrape: %d scrapes of %d queues' meters, %.2f ms CPU each (%.2f%% of one core at one a second)%n",
                    size, scrapes, queues, scrapeCpu / 1e6 / scrapes, scrapeCpu / 1e7 / scrapes);
        }
    }

    private static void print(int size, String clock, Rate[] without, Rate[] with, java.util.function.ToDoubleFunction<Rate> f) {
        int rounds = without.length;
        double[] ratios = new double[rounds], off = new double[rounds], on = new double[rounds];
        for (int r = 0; r < rounds; r++) {
            off[r] = f.applyAsDouble(without[r]);
            on[r] = f.applyAsDouble(with[r]);
            ratios[r] = on[r] / off[r];
        }
        double[] sorted = ratios.clone();
        Arrays.sort(sorted);
        double median = Stats.quantile(sorted, 0.5);
        System.out.printf(Locale.ROOT, "%5dB %-5s %12.2f %12.2f %8.4f %8.4f %8.4f %8.4f %8.4f  %+.2f%%%n", size, clock,
                Stats.median(off) / 1e6, Stats.median(on) / 1e6, median, sorted[0], Stats.quantile(sorted, 0.25), Stats.quantile(sorted, 0.75),
                sorted[rounds - 1], (1 - median) * 100);
    }

    /** The loopback ring SplitRingJmh measures, run for a while and timed by the wall clock and by this thread's CPU. */
    static final class Ring {
        final LoopbackSplitRing loop;
        final QueueCounters counters;

        Ring(int size) throws QueueFault {
            loop = new LoopbackSplitRing(size);
            counters = loop.counters;
        }

        /**
         * Runs the ring for {@code nanos} of wall-clock time: messages per second of wall-clock time, and per
         * second of this thread's CPU time (what the data path itself spent, whatever else the machine ran).
         */
        Rate run(long nanos) throws QueueFault {
            long n = 0, t0 = System.nanoTime(), c0 = THREADS.getCurrentThreadCpuTime(), end = t0 + nanos, now;
            do {
                for (int k = 0; k < 16; k++) {
                    loop.batch();
                    n += LoopbackSplitRing.BATCH;
                }
            } while ((now = System.nanoTime()) < end);
            long cpu = THREADS.getCurrentThreadCpuTime() - c0;
            return new Rate(n * 1e9 / (now - t0), n * 1e9 / cpu);
        }
    }

    /** A Prometheus registry with the app's per-queue meters over the ring and idle queues, scraped every second. */
    static final class Metrics implements AutoCloseable {
        final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        final List<QueueCounters> idle = new ArrayList<>();
        final Thread scraper;
        volatile boolean stop;
        volatile long scrapes, bytes, cpuNanos;

        Metrics(Ring ring, int queues) {
            register(ring.counters, 0);
            for (int q = 1; q < queues; q++) {
                QueueCounters c = new QueueCounters();
                idle.add(c);
                register(c, q);
            }
            scraper = Thread.ofPlatform().daemon().name("scraper").start(() -> {
                long next = System.nanoTime();
                while (!stop) {
                    long c0 = THREADS.getCurrentThreadCpuTime();
                    bytes += registry.scrape().length();
                    cpuNanos += THREADS.getCurrentThreadCpuTime() - c0;
                    scrapes++;
                    next += TimeUnit.SECONDS.toNanos(1);
                    // One wake-up a second, as Prometheus's request wakes one server thread a second: on a crowded
                    // machine every wake-up of a sibling can cost the ring thread its turn on the core. stop() unparks.
                    for (long wait; !stop && (wait = next - System.nanoTime()) > 0; ) java.util.concurrent.locks.LockSupport.parkNanos(wait);
                }
            });
        }

        /** As management-app's QueueMeters: five counters and three gauges per queue, tagged like a device's. */
        private void register(QueueCounters c, int q) {
            Tags t = Tags.of("container", "bench", "devid", Integer.toString(q / 2 + 1), "type", "virtio-net",
                    "queue", (q & 1) == 0 ? "rx0" : "tx0", "direction", (q & 1) == 0 ? "rx" : "tx");
            FunctionCounter.builder("jvbus.queue.buffers", c, QueueCounters::buffers).tags(t).description("buffers").register(registry);
            FunctionCounter.builder("jvbus.queue.bytes", c, QueueCounters::bytes).tags(t).baseUnit("bytes").description("bytes").register(registry);
            FunctionCounter.builder("jvbus.queue.kicks", c, QueueCounters::kicks).tags(t).description("kicks").register(registry);
            FunctionCounter.builder("jvbus.queue.notifications", c, QueueCounters::notificationsSent).tags(t).tag("outcome", "sent")
                    .description("notifications").register(registry);
            FunctionCounter.builder("jvbus.queue.notifications", c, QueueCounters::notificationsSuppressed).tags(t).tag("outcome", "suppressed")
                    .description("notifications").register(registry);
            gauge("jvbus.queue.available", c, t, "buffers", RingPosition::available);
            gauge("jvbus.queue.in.flight", c, t, "buffers", RingPosition::inFlight);
            gauge("jvbus.queue.size", c, t, "entries", RingPosition::size);
        }

        private void gauge(String name, QueueCounters c, Tags t, String unit, ToIntFunction<RingPosition> f) {
            Gauge.builder(name, c, x -> x.ring() == null ? 0 : f.applyAsInt(x.ring())).tags(t).baseUnit(unit).description(name)
                    .strongReference(true).register(registry);
        }

        /** Stops the scraper (after its scrape in progress). */
        void stop() throws InterruptedException {
            stop = true;
            java.util.concurrent.locks.LockSupport.unpark(scraper);
            scraper.join();
            if (scrapes == 0) throw new IllegalStateException("the scraper never ran");
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            java.util.concurrent.locks.LockSupport.unpark(scraper);
            scraper.join();
            registry.close();
        }
    }
}
