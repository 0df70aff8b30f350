package dev.jvbus.app.fleet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.TestDirs;
import dev.jvbus.connector.shm.client.MovableDevice;
import dev.jvbus.connector.shm.protocol.Message;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;

/**
 * A device moves between two real bus processes, each in its own network namespace ("host"), while a
 * real shm client in this process streams numbered frames through it to a TAP peer on the L2 segment
 * that joins the hosts ({@link Fleet}). The client library follows MOVED to the other bus with the
 * same rings, memory and doorbells: every frame reaches the peer once, in order and intact, or is
 * counted lost. And where the move fails (the target refuses a feature, the document is corrupted on
 * the way, the operation is cancelled, the target dies), the device is on A alone, the client with it,
 * and the stream goes on there with nothing lost.
 *
 * <p>Skipped, saying why, where namespaces and TAPs cannot be made (not root, no iproute2, no /dev/net/tun).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FleetMigrationTest {
    private static final int WINDOW = 32;
    private static final String DEVICES = "/api/v1/containers/" + BusNode.CONTAINER + "/devices";
    private static Fleet.Hosts hosts;
    private static Fleet fleet;
    private static final AtomicInteger PEERS = new AtomicInteger();

    @BeforeAll
    static void start() {
        hosts = Fleet.hosts();
    }

    @BeforeEach
    void fleet() {
        hosts.assumeAvailable();
        if (fleet == null) fleet = Fleet.create(hosts, TestDirs.fresh("jvbus-fleet"), System.out);
    }

    @AfterAll
    static void stop() {
        if (fleet != null) fleet.close();
        else if (hosts != null) hosts.close();
    }

    /** A sender device hotplugged on A, its shm client streaming to a fresh TAP peer on the segment. */
    private static final class Stream implements AutoCloseable {
        final long devid;
        final TapPeer peer;
        final StreamSender sender;
        final List<String> moves = new ArrayList<>();

        Stream(Consumer<Message.Moved> onMoving) {
            var r = fleet.a.api.post(DEVICES, "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
            assertThat(r.status()).as(r.toString()).isEqualTo(201);
            devid = r.json().path("devid").asLong();
            peer = fleet.peerOnB("peer" + PEERS.getAndIncrement());
            sender = new StreamSender(fleet.a.socket(), devid, new MovableDevice.MoveListener() {
                @Override public void moving(Message.Moved to) {
                    synchronized (moves) { moves.add("moving " + to.socket()); }
                    onMoving.accept(to);
                }
                @Override public void moved(Message.Moved to) { synchronized (moves) { moves.add("moved " + to.socket()); } }
                @Override public void abandoned(Message.Moved to, String why) { synchronized (moves) { moves.add("abandoned: " + why); } }
            });
            peer.follow(sender.mac);
            sender.start(peer::nextExpected, WINDOW);
        }

        void awaitMore(int frames, String what) {
            int target = peer.received() + frames;
            FleetApi.await(() -> peer.received() >= target || sender.failure() != null, what + " (" + target + " frames at the peer)", 120);
            assertThat(sender.failure()).as("the sender").isNull();
        }

        /** Stops, waits for the last frame sent to arrive (or for the peer to count it lost), checks the whole stream. */
        long finish(long maxLost) throws InterruptedException {
            long sent = sender.stop();
            FleetApi.await(() -> peer.nextExpected() >= sent, "the last frame sent (" + sent + ") reaches the peer", 60);
            assertThat(peer.duplicatedOrReordered()).as("frames duplicated or out of order").isZero();
            assertThat(peer.corrupted()).as("frames corrupted").isZero();
            assertThat(peer.received() + peer.lost()).as("each frame sent: received once, or counted lost").isEqualTo(sent);
            assertThat(peer.lost()).as("frames lost").isLessThanOrEqualTo(maxLost);
            return sent;
        }

        @Override
        public void close() {
            sender.close();
            peer.close();
        }
    }

    private static String path(long devid) {
        return DEVICES + "/" + devid;
    }

    private static List<String> names(JsonNode array) {
        return array.valueStream().map(JsonNode::asString).toList();
    }

    @Test
    @Order(1)
    void aStreamingShmClientFollowsItsDeviceFromBusAToBusBAndBackAndEveryFrameArrivesOnceIntactOrIsCountedLost() throws Exception {
        try (Stream s = new Stream(to -> { })) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode onA = fleet.a.api.get(path(s.devid)).json();

            JsonNode end = fleet.a.api.operation(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B\"}"));
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("succeeded");
            JsonNode where = end.path("result");
            assertThat(where.path("to").asString()).isEqualTo(fleet.b.url().toString());
            assertThat(where.path("socket").asString()).as("where the device lives now").isEqualTo(fleet.b.socket().toString());
            assertThat(where.path("driverTold").asBoolean()).isTrue();
            FleetApi.await(() -> s.sender.device.moves() == 1, "the client follows MOVED to B", 60);
            assertThat(s.sender.device.socket()).isEqualTo(fleet.b.socket());
            s.awaitMore(300, "the stream flows through B");

            assertThat(fleet.a.api.get(path(s.devid)).problemType()).as("released by A").isEqualTo("no-such-device");
            JsonNode onB = fleet.b.api.get(path(s.devid)).json();
            assertThat(onB.path("features").path("negotiated")).as("imposed on B, not renegotiated").isEqualTo(onA.path("features").path("negotiated"));
            assertThat(names(onB.path("status"))).contains("DRIVER_OK");
            assertThat(onB.path("parameters").path("mac").asString()).as("the MAC its driver knows")
                    .isEqualTo(dev.jvbus.net.MacAddress.toString(s.sender.mac));

            // And back, driven from B this time: each bus has the other as its configured target.
            end = fleet.b.api.operation(fleet.b.api.post(path(s.devid) + "/migrate", "{\"to\":\"A\"}"));
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("succeeded");
            FleetApi.await(() -> s.sender.device.moves() == 2, "the client follows MOVED back to A", 60);
            s.awaitMore(300, "the stream flows through A again");
            assertThat(fleet.b.api.get(path(s.devid)).problemType()).isEqualTo("no-such-device");

            long sent = s.finish(2L * WINDOW);
            System.out.println("[fleet] A -> B -> A with a shm client: " + sent + " frames sent, " + s.peer.received()
                    + " received once, " + s.peer.lost() + " lost; longest gap at the peer " + s.peer.longestGapNanos(0) / 1_000 + " us; "
                    + s.moves);
        }
    }

    /** The same for every failure: the operation ended as expected, the device is on A alone, the stream goes on there whole. */
    private static void stillOnAAndStreaming(Stream s, JsonNode end) throws InterruptedException {
        assertThat(fleet.b.isAlive() ? fleet.b.api.get(path(s.devid)).problemType() : "no-such-device")
                .as("never on B once the operation ended").isEqualTo("no-such-device");
        JsonNode onA = fleet.a.api.get(path(s.devid)).json();
        assertThat(names(onA.path("status"))).as(onA.toString()).contains("DRIVER_OK").doesNotContain("NEEDS_RESET");
        FleetApi.await(() -> !s.sender.device.isMoving(), "the client gives the move up", 60);
        assertThat(s.sender.device.moves()).isZero();
        assertThat(s.sender.device.socket()).isEqualTo(fleet.a.socket());
        s.awaitMore(300, "the stream goes on through A");
        s.finish(0);
        assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).doesNotContain("release-source");
    }

    @Test
    @Order(2)
    void aTargetWhoseOperatorLimitTakesAFeatureAwayRefusesTheDeviceAndItRunsOnOnA() throws Exception {
        try (Stream s = new Stream(to -> { })) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate",
                    "{\"to\":\"B\",\"overrides\":{\"limit\":{\"deny\":[\"EVENT_IDX\"]}}}").json().path("id").asString());
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("problem").path("type").asString()).endsWith("/target-failed");
            JsonNode there = end.path("problem").path("targetProblem");
            assertThat(there.path("type").asString()).endsWith("/feature-not-negotiable");
            assertThat(names(there.path("limited"))).containsExactly("VIRTIO_RING_F_EVENT_IDX");
            assertThat(s.moves).as("no driver was sent anywhere").isEmpty();
            stillOnAAndStreaming(s, end);
        }
    }

    @Test
    @Order(3)
    void aStateDocumentCorruptedOnTheWayIsRefusedByItsChecksumAndTheDeviceRunsOnOnA() throws Exception {
        try (TamperingProxy proxy = new TamperingProxy(Fleet.NET + "254", Fleet.TAMPER_PORT,
                new InetSocketAddress(Fleet.NET + "2", BusNode.PORT));
             Stream s = new Stream(to -> { })) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B-via-operator\"}")
                    .json().path("id").asString());
            assertThat(proxy.tampered()).as("the document was changed on the way").isEqualTo(1);
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            JsonNode there = end.path("problem").path("targetProblem");
            assertThat(there.path("type").asString()).endsWith("/malformed-document");
            assertThat(there.path("where").asString()).isEqualTo("/snapshot/checksum/value");
            stillOnAAndStreaming(s, end);
        }
    }

    @Test
    @Order(4)
    void aMigrationCancelledWhileTheClientIsOnItsWayLeavesTheDeviceOnAAndTheStreamGoesOnThere() throws Exception {
        String[] op = new String[1];
        // The client is slow to follow: before it reaches B, the operator cancels, and waits until the cancel is done.
        try (Stream s = new Stream(to -> {
            var c = fleet.a.api.post("/api/v1/operations/" + op[0] + "/cancel", null);
            assertThat(c.status()).as(c.toString()).isEqualTo(202);
            fleet.a.api.awaitEnd(op[0]);
        })) {
            s.awaitMore(300, "the stream flows through A");
            var started = fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B\"}");
            op[0] = started.json().path("id").asString();
            JsonNode end = fleet.a.api.awaitEnd(op[0]);
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("cancelled");
            FleetApi.await(() -> s.moves.stream().anyMatch(m -> m.startsWith("abandoned")), "the client gives the move up", 60);
            stillOnAAndStreaming(s, end);
        }
    }

    @Test
    @Order(5)
    void aTargetThatDiesMidTransferLeavesTheDeviceOnAAndTheStreamGoesOnThere() throws Exception {
        // B dies once it has restored the device and the client is told to go there.
        try (Stream s = new Stream(to -> fleet.b.kill())) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B\"}").json().path("id").asString());
            assertThat(fleet.b.isAlive()).isFalse();
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("problem").path("type").asString()).endsWith("/target-failed");
            stillOnAAndStreaming(s, end);
        }
    }

    @Test
    @Order(6)
    void aTargetLostAfterItWasAskedToStartTheDeviceLeavesTheOutcomeUnknownTheDevicePausedOnAAndTheOperatorDecides() throws Exception {
        if (!fleet.b.isAlive()) fleet.restart(fleet.b, List.of());   // the test before killed it
        // The link to B breaks right after it carried the request to start the device: B starts it, A never hears so.
        try (CuttingProxy link = new CuttingProxy(Fleet.NET + "254", Fleet.TAMPER_PORT, new InetSocketAddress(Fleet.NET + "2", BusNode.PORT),
                "/resume?");
             Stream s = new Stream(to -> { })) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B-via-operator\"}")
                    .json().path("id").asString());
            assertThat(link.cut()).as("the link broke after the start request: " + end).isTrue();
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            JsonNode problem = end.path("problem");
            assertThat(problem.path("type").asString()).endsWith("/outcome-unknown");
            assertThat(problem.path("detail").asString()).contains("unknown", "stays paused here",
                    "GET http://" + Fleet.NET + "254:" + Fleet.TAMPER_PORT + path(s.devid), "DELETE " + path(s.devid), "POST " + path(s.devid) + "/resume");
            assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).contains("start-target").doesNotContain("release-source");

            // B got the request and runs the device: the stream goes on through B. A neither resumed it (the peer would see
            // every frame since the pause twice) nor removed it (the client would have committed the move).
            s.awaitMore(300, "the stream flows through B, which started the device");
            JsonNode onB = fleet.b.api.get(path(s.devid)).json();
            assertThat(names(onB.path("status"))).contains("DRIVER_OK");
            assertThat(fleet.a.api.get(path(s.devid)).status()).as("still on A, paused").isEqualTo(200);
            assertThat(s.sender.device.isMoving()).as("the client waits for A to release the device").isTrue();

            // The operator checks B (it runs there) and removes the device from A, as the problem says: the client's move ends.
            assertThat(fleet.a.api.delete(path(s.devid)).status()).isEqualTo(204);
            FleetApi.await(() -> s.sender.device.moves() == 1, "the client follows the device to B for good", 60);
            s.awaitMore(300, "the stream goes on through B");
            s.finish(2L * WINDOW);
        }
    }

    @Test
    @Order(7)
    void aTargetWhoseModelDoesNotOfferAFeatureTheDriverNegotiatedRefusesTheDeviceNamingItAndItRunsOnOnA() throws Exception {
        // B as a bus of an older version would be: its virtio-net does not have EVENT_IDX, which the driver on A negotiated.
        fleet.restart(fleet.b, List.of("--jvbus.models.withhold.virtio-net=VIRTIO_RING_F_EVENT_IDX"));
        try (Stream s = new Stream(to -> { })) {
            assertThat(s.sender.negotiated & StreamSender.FEATURES).as("negotiated on A").isEqualTo(StreamSender.FEATURES);
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B\"}").json().path("id").asString());
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("problem").path("type").asString()).endsWith("/target-failed");
            JsonNode there = end.path("problem").path("targetProblem");
            assertThat(there.path("type").asString()).endsWith("/feature-not-negotiable");
            assertThat(names(there.path("notOffered"))).containsExactly("VIRTIO_RING_F_EVENT_IDX");
            assertThat(names(there.path("limited"))).isEmpty();
            assertThat(there.path("detail").asString()).contains("VIRTIO_RING_F_EVENT_IDX", "does not offer");
            assertThat(s.moves).as("no driver was sent anywhere").isEmpty();
            stillOnAAndStreaming(s, end);
        } finally {
            fleet.restart(fleet.b, List.of());
        }
    }
    @Test
    @Order(8)
    void aTargetThatRefusesToLetUsFollowItsEventsStillTakesTheDeviceItsOperationsAreAskedFor() throws Exception {
        // B already serves as many event-stream subscribers as it takes (its limit is 0 here): A must not need its events.
        fleet.restart(fleet.b, List.of("--jvbus.events.max-subscribers=0"));
        try (Stream s = new Stream(to -> { })) {
            assertThat(subscribe(fleet.b)).as("B refuses every subscriber").isNotEqualTo(200);
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate", "{\"to\":\"B\"}").json().path("id").asString());
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("succeeded");
            assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).contains("start-target", "release-source");
            FleetApi.await(() -> s.sender.device.moves() == 1, "the client follows MOVED to B", 60);
            s.awaitMore(300, "the stream flows through B");
            assertThat(fleet.a.api.get(path(s.devid)).problemType()).as("released by A").isEqualTo("no-such-device");
            assertThat(names(fleet.b.api.get(path(s.devid)).json().path("status"))).contains("DRIVER_OK");
            s.finish(WINDOW);
        } finally {
            fleet.restart(fleet.b, List.of());
        }
    }

    @Test
    @Order(9)
    void aTargetCutOffRightAfterItPreparedTheDeviceRemovesItByItselfAndTheDeviceNeverStopsOnA() throws Exception {
        if (!fleet.b.isAlive()) fleet.restart(fleet.b, List.of());
        // The link to B breaks right after it carried the request to prepare the device: B makes it (paused, holding
        // nothing) and waits for a completion that never comes; A never hears of it and cannot undo it.
        try (CuttingProxy link = new CuttingProxy(Fleet.NET + "254", Fleet.TAMPER_PORT, new InetSocketAddress(Fleet.NET + "2", BusNode.PORT),
                "prepare=");
             Stream s = new Stream(to -> { })) {
            s.awaitMore(300, "the stream flows through A");
            JsonNode end = fleet.a.api.awaitEnd(fleet.a.api.post(path(s.devid) + "/migrate",
                    "{\"to\":\"B-via-operator\",\"driverTimeoutSeconds\":2}").json().path("id").asString());
            assertThat(link.cut()).as("the link broke after the prepare request: " + end).isTrue();
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("problem").path("type").asString()).endsWith("/target-failed");
            assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString()))
                    .as("the device was never paused here").contains("prepare-on-target").doesNotContain("quiesce");
            assertThat(s.moves).as("no driver was sent anywhere").isEmpty();

            // B removes what it prepared once its bound (2 s) passed, by itself: its operation ends, the device gone.
            java.util.function.Supplier<JsonNode> preparing = () -> fleet.b.api.get("/api/v1/operations").json().valueStream()
                    .filter(op -> op.path("kind").asString().equals("restore")).findFirst().orElse(null);
            FleetApi.await(() -> preparing.get() != null && !preparing.get().path("state").asString().equals("running"),
                    "B's prepare operation ends", 60);
            JsonNode prepared = preparing.get();
            assertThat(prepared.path("steps").valueStream().map(st -> st.path("name").asString()))
                    .as("B made the device and waited for its completion").containsExactly("restore", "await-completion");
            assertThat(fleet.b.api.get(path(s.devid)).status()).as("removed by B itself").isEqualTo(404);
            assertThat(prepared.path("state").asString()).as(prepared.toString()).isEqualTo("failed");
            assertThat(prepared.path("problem").path("detail").asString()).contains("not completed within 2 s", "removed again");
            stillOnAAndStreaming(s, end);
        }
    }

    /** The status of a subscription to {@code bus}'s event stream, as a bus asks for it; closed at once. */
    private static int subscribe(BusNode bus) throws Exception {
        var req = java.net.http.HttpRequest.newBuilder(bus.url().resolve("/api/v1/events")).header("Accept", "text/event-stream")
                .header("Authorization", "Basic " + java.util.Base64.getEncoder().encodeToString(("admin:" + bus.adminPassword).getBytes()))
                .timeout(java.time.Duration.ofSeconds(30)).build();
        try (var http = java.net.http.HttpClient.newHttpClient()) {
            var r = http.send(req, java.net.http.HttpResponse.BodyHandlers.ofInputStream());
            r.body().close();
            System.out.println("[fleet] GET " + bus.url() + "/api/v1/events: HTTP " + r.statusCode());
            return r.statusCode();
        }
    }
}
