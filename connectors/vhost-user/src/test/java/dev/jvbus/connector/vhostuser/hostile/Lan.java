package dev.jvbus.connector.vhostuser.hostile;

import dev.jvbus.connector.shm.server.ShmFixture;
import dev.jvbus.connector.shm.server.ShmLimits;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.connector.vhostuser.VhostUserLimits;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * The one bus every tenant shares: a container exposed on the shm connector, with network {@value #NETWORK}
 * where the well-behaved pair's devices A and B sit, and where the attackers' devices go too, so an
 * attack on the switch is an attack on the pair. Attacks reach the bus only as tenants do: over the
 * container's shm socket or a device's vhost-user socket, with real fds.
 */
final class Lan implements AutoCloseable {
    static final String NETWORK = "lan";
    static final long MAC_A = MacAddress.parse("02:00:00:00:0a:0a"), MAC_B = MacAddress.parse("02:00:00:00:0b:0b");
    /** How long the harness waits for anything the bus does on its own: generous, for a busy machine. */
    static final Duration WAIT = Duration.ofSeconds(30);

    /**
     * The operator's settings for this bus, chosen so the limit attacks are quick: a silent connection
     * is dropped after 2 s instead of 10 (the well-behaved clients say HELLO / SET_OWNER in their first
     * message, far inside it), the crowd meets its limit after 16 connections instead of 64, and the
     * container holds {@value #DEVICES} devices (the pair, the sink and an attack's few).
     */
    static final Duration HANDSHAKE = Duration.ofSeconds(2);
    static final ShmLimits SHM_LIMITS = ShmLimits.DEFAULTS.withHelloTimeout(HANDSHAKE).withSessionsPerSocket(16);
    static final VhostUserLimits VHOST_LIMITS = VhostUserLimits.DEFAULTS.withOwnerTimeout(HANDSHAKE);
    static final int DEVICES = 32;

    final ShmFixture fx = new ShmFixture(SHM_LIMITS);
    final Container container;
    final L2Switch sw;
    final Path socket;
    final Device a, b;
    /**
     * A device whose MAC is in the switch's table from its hotplug on (a device's port joins, held to its
     * MAC, when the device is made): attackers announce their own MACs with a unicast to it, so their
     * traffic never floods. It takes no frames (no rx buffers): what reaches it is dropped and counted at its port.
     */
    final NetTenant sink;
    private final List<Device> attackers = new ArrayList<>();
    /** Sessions on the shm socket once the pair streams: its two and the sink's. Attackers' sessions come and go on top. */
    int settledSessions;
    private int next;

    Lan() {
        container = fx.bus.createContainer("hostile-" + ProcessHandle.current().pid() + "-" + System.nanoTime() % 100_000);
        container.limitDevices(DEVICES);
        sw = Networks.of(container).getOrCreate(NETWORK);
        a = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MacAddress.toString(MAC_A)));
        b = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MacAddress.toString(MAC_B)));
        fx.shm.expose(container.name());
        socket = fx.socket(container.name());
        Device s = addNet("sink");
        sink = new NetTenant(this, s, "sink", 0);
        try {
            sink.awaitLearned(this);                          // at its port from hotplug on
            sink.sendBlocking(sink.mac, sink.mac, 60, 0);   // to itself: a hairpin, dropped at its own port, flooded nowhere
        } catch (dev.jvbus.core.ring.QueueFault e) {
            throw new AssertionError(e);
        }
        for (Device d : List.of(a, b))
            if (stats(d).txFrames() + stats(d).dropped() != 0)
                throw new AssertionError("the sink's announcement reached " + portName(d) + ": " + sw.stats());
    }

    /** A fresh virtio-net device on the pair's network for an attacker (its MAC assigned by the bus). */
    Device addNet(String role) {
        return add(VirtioNetModel.TYPE, role, Map.of());
    }

    Device add(String type, String role, Map<String, String> extra) {
        Map<String, String> p = new HashMap<>(extra);
        p.putIfAbsent("network", NETWORK);
        Device d = container.addDevice(type, -1L, p);
        synchronized (attackers) {
            attackers.add(d);
        }
        return d;
    }

    /** Serves {@code d} on a fresh vhost-user socket, within this bus's {@link #VHOST_LIMITS}. */
    VhostUserBackend serve(Device d, String role) {
        return VhostUserBackend.serve(d, vhostSocket(role), VHOST_LIMITS);
    }

    /** Sessions the container's shm socket serves now. */
    int sessions() {
        return fx.shm.socket(container.name()).orElseThrow().sessionCount();
    }

    /** A path for a vhost-user socket of an attacker's device (sun_path is short: beside the shm socket). */
    Path vhostSocket(String role) {
        return fx.dir.getParent().resolve("vu" + (next++) + ".sock");
    }

    static String portName(Device d) {
        String devid = Integer.toUnsignedString(d.devid().value());
        return d.type().equals(VirtioNetModel.TYPE) ? d.container() + "/" + devid + ":virtio-net" : "venet:" + d.container() + "/" + devid;
    }

    PortStats stats(Device d) {
        String name = portName(d);
        return sw.stats().stream().filter(s -> s.port().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no port " + name + " on " + NETWORK + ": " + sw.stats()));
    }

    /** Frames A put into the switch: the pair's data stream, the rate the harness watches. */
    long framesFromA() {
        return stats(a).rxFrames();
    }

    /** Unplugs an attacker's device as the operator would, and fails if that does not finish within {@code bound}. */
    void unplug(Device d, Duration bound) {
        if (!container.contains(d.devid())) return;
        bounded("unplug of " + portName(d), bound, () -> container.removeDevice(d.devid()));
    }

    /**
     * Runs {@code body} on a thread of its own and waits at most {@code bound}: a bus that wedges shows
     * as a failure naming what never finished, with the stuck thread's stack, never as a hung build.
     */
    static <T> T bounded(String what, Duration bound, Callable<T> body) {
        CompletableFuture<T> done = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().daemon().name("bounded: " + what).start(() -> {
            try {
                done.complete(body.call());
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        });
        try {
            return done.get(bound.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            AssertionError stuck = new AssertionError(what + " did not finish within " + bound + "; where it is stuck:");
            Throwable where = new Throwable("stack of " + t.getName());
            where.setStackTrace(t.getStackTrace());
            stuck.initCause(where);
            throw stuck;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Error err) throw err;
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new AssertionError(what + ": " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(what + ": interrupted");
        }
    }

    static void await(String what, BooleanSupplier condition) {
        await(what, WAIT, condition);
    }

    /** Polls {@code condition} until it holds; fails naming {@code what} after {@code bound}. */
    static void await(String what, Duration bound, BooleanSupplier condition) {
        long deadline = System.nanoTime() + bound.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened within " + bound + ": " + what);
            LockSupport.parkNanos(2_000_000);
        }
    }

    /** This JVM's open fds: the bus runs here, so what it keeps of a tenant's fds shows in this count. */
    static long openFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count() - 1;     // less the directory stream's own fd
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * This JVM's open fds by kind (what /proc/self/fd links to, digits blanked: "socket:[N]",
     * "anon_inode:[eventfd]", "/memfd:name (deleted)", a jar...). Compared before and after an attack,
     * the difference says what leaked.
     */
    static Map<String, Long> openFdKinds() {
        Map<String, Long> kinds = new java.util.TreeMap<>();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            fds.forEach(p -> {
                try {
                    kinds.merge(Files.readSymbolicLink(p).toString().replaceAll("[0-9]+", "N"), 1L, Long::sum);
                } catch (IOException gone) {
                    // closed while we listed (the listing's own fd among them)
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return kinds;
    }

    /** Waits until this JVM's open fds are those of {@code before} again (the bus closes a refused request's fds as it answers). */
    static void awaitFdsBackTo(Map<String, Long> before, String after) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        Map<String, Long> now;
        while (!(now = openFdKinds()).equals(before)) {
            if (System.nanoTime() > deadline) {
                Map<String, Long> changed = new java.util.TreeMap<>();
                for (String k : new java.util.TreeSet<>(concat(before.keySet(), now.keySet()))) {
                    long d = now.getOrDefault(k, 0L) - before.getOrDefault(k, 0L);
                    if (d != 0) changed.put(k, d);
                }
                throw new AssertionError("open fds in the bus's JVM after " + after + " differ from before, by kind: " + changed);
            }
            LockSupport.parkNanos(5_000_000);
        }
    }

    private static List<String> concat(java.util.Collection<String> a, java.util.Collection<String> b) {
        List<String> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    @Override
    public void close() {
        List<Device> left;
        synchronized (attackers) {
            left = List.copyOf(attackers);
        }
        sink.close();
        for (Device d : left.reversed()) {
            try {
                unplug(d, WAIT);
            } catch (RuntimeException | AssertionError e) {
                System.err.println("could not unplug " + portName(d) + ": " + e);
            }
        }
        fx.close();
        try {
            fx.bus.destroyContainer(container.name());
        } catch (RuntimeException ignored) {
            // the bus may have gone with the fixture
        }
    }
}
