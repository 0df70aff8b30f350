package dev.jvbus.connector.shm.soak;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.server.ContainerSocket;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.testing.ChildJvm;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The soak (issue 10): many clients, each in a JVM of its own, against one bus for a while. Devices are
 * hot-plugged for them and unplugged after them; each client opens its device, shares memory, starts the
 * rings and streams frames to a sink on the switch; some finish and leave cleanly, some are SIGKILLed at a
 * random moment, before or while they stream. At the end the bus must be as it was: its fds, its memfd
 * mappings and its threads back to the baseline taken after a warm-up, its heap after GC within 10%, and
 * every frame the switch accepted from a client delivered to the sink (the sink takes everything, so none
 * may be missing). Short here (`jvbus.soak.seconds`, 20 by default); `./jvbus soak --minutes N` runs it long.
 */
class SoakTest {
    static final long SINK_MAC = MacAddress.parse("02:00:00:00:5a:01");
    static final int CLIENTS = 3;

    /** The sink: a switch port that takes every frame and counts it. */
    static final class Sink implements NetPort {
        final AtomicLong frames = new AtomicLong();
        @Override public String name() { return "soak-sink"; }
        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            frames.incrementAndGet();
            return null;
        }
    }

    /** One client and the device hot-plugged for it. */
    record Client(Device device, ChildJvm jvm, long killAtNanos) {}

    @Test
    void manyClientsComingStreamingAndDyingLeaveTheBusAsItWas() throws Exception {
        long seconds = Long.getLong("jvbus.soak.seconds", 20);
        Path dir = Files.createTempDirectory("jvbus-soak");
        Bus bus = Bus.withDiscoveredModels();
        Container box = bus.createContainer("soak");
        L2Switch sw = Networks.of(box).getOrCreate("default");
        Sink sink = new Sink();
        sw.join(sink, SINK_MAC);
        ContainerSocket socket = new ShmConnector(bus, dir.resolve("run")).expose(box.name());
        warmUp(box, socket);   // classes, the JIT, the first session, the process reaper
        long sinkBefore = sink.frames.get();
        Snapshot baseline = Snapshot.take();
        Counts counts = new Counts();

        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<Client> live = new ArrayList<>();
        ThreadLocalRandom rnd = ThreadLocalRandom.current();
        while (System.nanoTime() < end || !live.isEmpty()) {
            while (System.nanoTime() < end && live.size() < CLIENTS) {
                boolean kill = rnd.nextInt(3) == 0;
                live.add(start(box, socket, counts, 1_000 + rnd.nextInt(40_000), kill ? System.nanoTime() + rnd.nextLong(1_500_000_000L) : -1));
            }
            for (Client c : List.copyOf(live)) {
                if (c.killAtNanos() > 0 && System.nanoTime() >= c.killAtNanos() && c.jvm().process().isAlive()) {
                    c.jvm().kill();
                    counts.killed++;
                }
                if (!c.jvm().process().isAlive()) {
                    finish(box, c, counts);
                    live.remove(c);
                }
            }
            Thread.sleep(20);
        }

        Snapshot after = Snapshot.settle(baseline);
        System.out.printf("soak: %d s, %d hotplugs, %d clients (%d SIGKILLed, %d left cleanly), %d frames accepted by the switch,"
                        + " %d delivered to the sink; fds %d -> %d, memfd mappings %d -> %d, threads %d -> %d, heap after GC %.1f -> %.1f MiB%n",
                seconds, counts.hotplugs, counts.clients, counts.killed, counts.clean, counts.accepted, sink.frames.get() - sinkBefore,
                baseline.fds(), after.fds(), baseline.memfdMaps(), after.memfdMaps(), baseline.threads(), after.threads(),
                baseline.heap() / 1048576.0, after.heap() / 1048576.0);
        assertThat(counts.clients).as("clients ran").isGreaterThanOrEqualTo(CLIENTS);
        assertThat(counts.ingressDrops).as("frames the switch refused from a client (none expected: each sends from its own MAC)").isZero();
        assertThat(sink.frames.get() - sinkBefore).as("every frame the switch accepted reached the sink").isEqualTo(counts.accepted);
        assertThat(after.fds()).as("fds back to the baseline").isEqualTo(baseline.fds());
        assertThat(after.memfdMaps()).as("memfd mappings back to the baseline").isEqualTo(baseline.memfdMaps());
        // Not more threads than at the baseline; fewer is fine (a virtual-thread carrier retires after its idle time).
        assertThat(after.threads()).as("threads back to the baseline").isLessThanOrEqualTo(baseline.threads());
        assertThat((double) after.heap()).as("heap after GC within 10% of the baseline").isLessThanOrEqualTo(baseline.heap() * 1.10);
        socket.close();
        bus.destroyContainer(box.name());
    }

    static final class Counts {
        long hotplugs, clients, killed, clean, accepted, ingressDrops;
    }

    private static Client start(Container box, ContainerSocket socket, Counts counts, int frames, long killAt) {
        Device d = box.addDevice("virtio-net");
        counts.hotplugs++;
        counts.clients++;
        ChildJvm jvm = ChildJvm.start(List.of("-Xmx64m", "-XX:TieredStopAtLevel=1"), SoakClientProcess.class, socket.path().toString(),
                d.devid().toString(), Long.toString(SINK_MAC), Integer.toString(frames));
        return new Client(d, jvm, killAt);
    }

    /** The client is gone: once the bus released its device, count what the switch took from it, then unplug it. */
    private static void finish(Container box, Client c, Counts counts) throws InterruptedException {
        if (c.jvm().process().exitValue() == 0) counts.clean++;
        else if (c.killAtNanos() < 0) throw new AssertionError("a client that was not killed failed:\n" + c.jvm().output());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (c.device().holder().isPresent()) {
            if (System.nanoTime() > deadline) throw new AssertionError("device " + c.device().devid() + " still held 30 s after its client died");
            Thread.sleep(5);
        }
        String port = box.name() + "/" + c.device().devid().unsigned() + ":";
        for (PortStats p : Networks.of(box).getOrCreate("default").stats()) {
            if (!p.port().startsWith(port)) continue;
            counts.accepted += p.rxFrames();
            counts.ingressDrops += p.drops().entrySet().stream().filter(e -> e.getKey() == DropReason.RUNT || e.getKey() == DropReason.SPOOFED_SOURCE
                    || e.getKey() == DropReason.HAIRPIN).mapToLong(Map.Entry::getValue).sum();
        }
        box.removeDevice(c.device().devid());
        try {
            c.jvm().process().getOutputStream().close();   // the pipe to its stdin is an fd of ours
        } catch (java.io.IOException ignored) {
            // already closed
        }
        c.jvm().close();
    }

    private static void warmUp(Container box, ContainerSocket socket) throws InterruptedException {
        Counts ignored = new Counts();
        Client c = start(box, socket, ignored, 2_000, -1);
        assertThat(c.jvm().waitFor(120, TimeUnit.SECONDS)).as(c.jvm().output()).isZero();
        finish(box, c, ignored);
    }

    /** What the bus process holds: fds, memfd mappings, threads, heap after GC. */
    record Snapshot(long fds, long memfdMaps, int threads, long heap) {
        static Snapshot take() {
            return new Snapshot(count(Path.of("/proc/self/fd")), memfdMappings(), busThreads(), heapAfterGc());
        }

        /** Waits (60 s at most) for fds, mappings and threads to come back to the baseline (threads: at most it); then the snapshot. */
        static Snapshot settle(Snapshot baseline) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            Snapshot s = take();
            while ((s.fds() != baseline.fds() || s.memfdMaps() != baseline.memfdMaps() || s.threads() > baseline.threads()
                    || s.heap() > baseline.heap() * 1.10) && System.nanoTime() < deadline) {
                Thread.sleep(200);
                s = take();
            }
            return s;
        }

        private static long count(Path dir) {
            try (Stream<Path> s = Files.list(dir)) {
                return s.count();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        /** Live threads but the JDK's process reapers, which wait on the soak's own child JVMs, not on the bus. */
        private static int busThreads() {
            return (int) Thread.getAllStackTraces().keySet().stream().filter(t -> !t.getName().startsWith("process reaper")).count();
        }

        private static long memfdMappings() {
            try (Stream<String> s = Files.lines(Path.of("/proc/self/maps"))) {
                return s.filter(l -> l.contains("/memfd:")).count();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        private static long heapAfterGc() {
            MemoryMXBean m = ManagementFactory.getMemoryMXBean();
            for (int i = 0; i < 3; i++) System.gc();
            return m.getHeapMemoryUsage().getUsed();
        }
    }
}
