package dev.jvbus.app.fleet;

import dev.jvbus.connector.shm.client.MovableDevice;
import dev.jvbus.connector.shm.protocol.Message;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import org.opentest4j.TestAbortedException;
import tools.jackson.databind.JsonNode;

/**
 * {@code ./jvbus fleet-demo}: builds the two-host fleet ({@link Fleet}), streams numbered frames from an
 * shm client through a device on bus A to a TAP peer on the segment, moves the device to bus B and back
 * while it streams, prints every step, and tears everything down.
 *
 * <p>{@code ./jvbus bench-migrate [N]} ({@code bench} mode): the same fleet and stream, N migrations (20 by
 * default) back and forth, and the downtime of each two ways: as the source bus measured it (from the pause
 * at the source to the start at the target, the operation's {@code downtimeMicros}) and as the peer saw
 * it (the longest gap between two frames across the migration). Prints median and max of both.
 */
public final class FleetDemo {
    private static final int WINDOW = 32;
    private static final String DEVICES = "/api/v1/containers/" + BusNode.CONTAINER + "/devices";

    public static void main(String[] args) throws Exception {
        boolean bench = args.length > 0 && args[0].equals("bench");
        int migrations = bench && args.length > 1 ? Integer.parseInt(args[1]) : bench ? 20 : 2;
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "jvbus-fleet-");
        try (Fleet.Hosts hosts = Fleet.hosts()) {
            try {
                hosts.assumeAvailable();
            } catch (TestAbortedException e) {
                System.out.println("fleet: cannot build the two hosts here: " + e.getMessage());
                System.exit(2);
            }
            try (Fleet fleet = Fleet.create(hosts, dir, System.out)) {
                run(fleet, migrations, bench);
            }
        }
    }

    private static void run(Fleet fleet, int migrations, boolean bench) throws Exception {
        var r = fleet.a.api.post(DEVICES, "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
        if (r.status() != 201) throw new IllegalStateException("hotplug on A refused: " + r);
        long devid = r.json().path("devid").asLong();
        say("POST " + fleet.a.url() + DEVICES + " {type: virtio-net, network: lan0} -> devid " + devid);
        try (TapPeer peer = fleet.peerOnB("peer0");
             StreamSender sender = new StreamSender(fleet.a.socket(), devid, new MovableDevice.MoveListener() {
                 @Override public void moving(Message.Moved to) { if (!bench) say("client: MOVED -> reopening the device on " + to.socket()); }
                 @Override public void moved(Message.Moved to) { if (!bench) say("client: source released the device; it lives on " + to.socket()); }
                 @Override public void abandoned(Message.Moved to, String why) { say("client: move given up: " + why); }
             })) {
            say("shm client (pid " + ProcessHandle.current().pid() + ") opened devid " + devid + " on " + fleet.a.socket()
                    + ", negotiated 0x" + Long.toHexString(sender.negotiated) + ", MAC " + dev.jvbus.net.MacAddress.toString(sender.mac)
                    + "; streaming numbered frames to TAP peer peer0 on host B");
            peer.follow(sender.mac);
            sender.start(peer::nextExpected, WINDOW);
            awaitMore(peer, 2_000);
            say("stream flows through bus A: " + peer.received() + " frames at the peer");
            if (bench) System.out.println("[bench] load average at the start: " + loadAverage());
            List<Long> busDowntime = new ArrayList<>(), peerGap = new ArrayList<>();
            BusNode from = fleet.a, to = fleet.b;
            for (int i = 0; i < migrations; i++) {
                int before = peer.received();
                String body = "{\"to\":\"" + to.name() + "\"}";
                if (!bench) say("POST " + from.url() + DEVICES + "/" + devid + "/migrate " + body);
                JsonNode end = from.api.operation(from.api.post(DEVICES + "/" + devid + "/migrate", body));
                if (!"succeeded".equals(end.path("state").asString())) throw new IllegalStateException("migration failed: " + end);
                int moves = i + 1;
                FleetApi.await(() -> sender.device.moves() == moves, "the client follows", 60);
                awaitMore(peer, 2_000);
                long gap = peer.longestGapNanos(Math.max(1, before - 1)) / 1_000;
                long downtime = end.path("result").path("downtimeMicros").asLong();
                busDowntime.add(downtime);
                peerGap.add(gap);
                if (!bench) {
                    StringBuilder steps = new StringBuilder();
                    for (JsonNode st : end.path("steps")) steps.append(st.path("name").asString()).append(' ');
                    say("operation " + end.path("id").asString() + " succeeded: " + steps.toString().strip());
                    say("device " + devid + " now lives on " + end.path("result").path("to").asString() + ", socket "
                            + end.path("result").path("socket").asString() + "; downtime " + downtime + " us (bus), longest gap at the peer "
                            + gap + " us; " + peer.received() + " frames at the peer");
                } else {
                    System.out.printf(Locale.ROOT, "migration %2d %s -> %s: downtime %7d us (bus), gap at the peer %7d us; steps (ms): %s%s%n",
                            moves, from.name(), to.name(), downtime, gap, stepMillis(end), targetSteps(to, end));
                }
                BusNode t = from;
                from = to;
                to = t;
            }
            long sent = sender.stop();
            FleetApi.await(() -> peer.nextExpected() >= sent, "the last frame reaches the peer", 60);
            say("stream: " + sent + " frames sent, " + peer.received() + " received once, " + peer.lost() + " lost, "
                    + peer.duplicatedOrReordered() + " duplicated or out of order, " + peer.corrupted() + " corrupted");
            if (bench) {
                System.out.printf(Locale.ROOT, "%n%d shm migrations: downtime (bus, pause to start)  median %d us, max %d us%n",
                        migrations, median(busDowntime), Collections.max(busDowntime));
                System.out.printf(Locale.ROOT, "%d shm migrations: gap at the TAP peer          median %d us, max %d us%n",
                        migrations, median(peerGap), Collections.max(peerGap));
                System.out.println("[bench] load average at the end: " + loadAverage() + " (" + Runtime.getRuntime().availableProcessors() + " cores)");
            }
        }
    }

    /** The target's operations (prepare, start) and their steps, as the target timed them: where its share goes. */
    private static String targetSteps(BusNode target, JsonNode end) {
        StringBuilder b = new StringBuilder();
        for (JsonNode id : end.path("result").path("targetOperations")) {
            var r = target.api.get("/api/v1/operations/" + id.asString());
            if (r.status() == 200) b.append("; ").append(target.name()).append(' ').append(r.json().path("kind").asString()).append(": ")
                    .append(stepMillis(r.json()));
        }
        return b.toString();
    }

    /** Each step's duration, from the operation's own timestamps: where the downtime goes. */
    private static String stepMillis(JsonNode op) {
        StringBuilder b = new StringBuilder();
        for (JsonNode st : op.path("steps")) {
            if (!st.path("finishedAt").isString()) continue;   // still current
            long ms = java.time.Duration.between(java.time.Instant.parse(st.path("startedAt").asString()),
                    java.time.Instant.parse(st.path("finishedAt").asString())).toMillis();
            b.append(st.path("name").asString()).append(' ').append(ms).append(", ");
        }
        return b.length() == 0 ? "" : b.substring(0, b.length() - 2);
    }

    private static void awaitMore(TapPeer peer, int frames) {
        int target = peer.received() + frames;
        FleetApi.await(() -> peer.received() >= target, target + " frames at the peer", 120);
    }

    private static long median(List<Long> xs) {
        List<Long> s = new ArrayList<>(xs);
        Collections.sort(s);
        return s.get(s.size() / 2);
    }

    /** The machine's load (1, 5, 15 minutes), which every figure here depends on. */
    private static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (java.io.IOException | RuntimeException e) {
            return "unknown";
        }
    }

    private static void say(String s) {
        System.out.println("[demo] " + s);
    }
}
