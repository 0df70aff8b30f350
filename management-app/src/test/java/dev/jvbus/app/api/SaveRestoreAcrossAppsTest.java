package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.JvbusApplication;
import dev.jvbus.app.TestDirs;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;

/**
 * Two apps in one JVM, each with its own data and runtime directories, port and bus: a device saved on
 * one and restored on the other, or migrated, carries on a stream of numbered frames driven by a real
 * shm client (real memfd, eventfds, UNIX sockets) with nothing lost and nothing twice.
 *
 * <p>Each app's default container {@code mig} is exposed on its shm socket and has a virtio-net device
 * (devid 2) on {@code lan0}; a test plugs a sender device into app A and drives devid 2 of each app as a
 * receiver. The sender sends broadcast frames, so whichever bus it is on, that bus's receiver gets them.
 */
class SaveRestoreAcrossAppsTest {
    private static final long RECEIVER = 2;
    private static final int WINDOW = 32;
    private static final Path DIR = TestDirs.fresh("jvbus-two-apps");
    private static ConfigurableApplicationContext appA, appB;
    private static Api a, b;

    @BeforeAll
    static void start() {
        // B first: A is configured with B's address (and with the credential B gave it) as its migration targets.
        appB = start(DIR.resolve("b"));
        String bUrl = "http://127.0.0.1:" + port(appB);
        appA = start(DIR.resolve("a"),
                "--jvbus.migration.targets[0].name=b", "--jvbus.migration.targets[0].url=" + bUrl,
                "--jvbus.migration.targets[0].user=admin", "--jvbus.migration.targets[0].password=pw",
                "--jvbus.migration.targets[1].name=b-wrong-password", "--jvbus.migration.targets[1].url=" + bUrl + "/",
                "--jvbus.migration.targets[1].user=admin", "--jvbus.migration.targets[1].password=wrong");
        a = new Api(port(appA), "admin", "pw");
        b = new Api(port(appB), "admin", "pw");
    }

    @AfterAll
    static void stop() {
        if (appA != null) appA.close();
        if (appB != null) appB.close();
    }

    private static ConfigurableApplicationContext start(Path dir, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "--server.port=0", "--spring.main.keep-alive=false", "--jvbus.default.container=mig",
                "--jvbus.runtime-dir=" + dir.resolve("run"), "--jvbus.data-dir=" + dir.resolve("data"),
                "--jvbus.security.users[0].name=admin", "--jvbus.security.users[0].password={noop}pw",
                "--jvbus.security.users[0].role=admin",
                "--jvbus.security.users[1].name=viewer", "--jvbus.security.users[1].password={noop}vw",
                "--jvbus.security.users[1].role=viewer"));
        args.addAll(List.of(more));
        return new SpringApplicationBuilder(JvbusApplication.class).run(args.toArray(String[]::new));
    }

    private static int port(ConfigurableApplicationContext app) {
        return Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
    }

    private static Path socket(String app) {
        return DIR.resolve(app).resolve("run").resolve("mig.sock");
    }

    /** A stream from a sender plugged into app A to the receivers of both apps. */
    private static final class Stream implements AutoCloseable {
        final long devid;
        final NetDriver sender, receiverA, receiverB;
        final List<Long> seqsA = new ArrayList<>(), seqsB = new ArrayList<>();
        final AtomicLong received = new AtomicLong();

        Stream() throws Exception {
            var r = a.post("/api/v1/containers/mig/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
            assertThat(r.status()).as(r.toString()).isEqualTo(201);
            devid = r.json().path("devid").asLong();
            receiverA = NetDriver.open(socket("a"), RECEIVER);
            receiverB = NetDriver.open(socket("b"), RECEIVER);
            receiverA.receive(seqsA, received);
            receiverB.receive(seqsB, received);
            sender = NetDriver.open(socket("a"), devid);
            sender.send(received, WINDOW);
        }

        void awaitReceived(long n, String what) {
            await(() -> received.get() >= n || sender.failure != null || receiverA.failure != null || receiverB.failure != null, what);
            noFailures();
        }

        void noFailures() {
            assertThat(sender.failure).as("sender").isNull();
            assertThat(receiverA.failure).as("receiver on A").isNull();
            assertThat(receiverB.failure).as("receiver on B").isNull();
        }

        /** Stops sending, waits for every frame sent to arrive; returns how many were sent. */
        long finish() throws Exception {
            long total = sender.stopSending();
            awaitReceived(total, "every frame sent (" + total + ") received");
            return total;
        }

        List<Long> seqsOnA() {
            synchronized (seqsA) {
                return List.copyOf(seqsA);
            }
        }

        List<Long> seqsOnB() {
            synchronized (seqsB) {
                return List.copyOf(seqsB);
            }
        }

        @Override
        public void close() throws Exception {
            sender.close();
            receiverA.close();
            receiverB.close();
        }
    }

    @Test
    void aSnapshotRestoredIntoASecondAppContinuesTheStreamWithNothingLostOrDuplicated() throws Exception {
        try (Stream s = new Stream()) {
            s.awaitReceived(300, "the stream flows on A");
            JsonNode before = a.get("/api/v1/containers/mig/devices/" + s.devid).json();

            // Save on A, leaving the device paused: the sender's frames wait in its tx ring meanwhile.
            JsonNode doc = result(a, a.post("/api/v1/containers/mig/devices/" + s.devid + "/snapshot", "{\"stayPaused\":true}"));
            assertThat(doc.path("paused").asBoolean()).isTrue();
            assertThat(doc.path("device").path("features").path("negotiated").valueStream().map(JsonNode::asString))
                    .contains("VIRTIO_F_VERSION_1", "VIRTIO_RING_F_EVENT_IDX", "VIRTIO_NET_F_MAC");

            // Restore on B as the document came, move the driver there, resume, and let A's copy go.
            JsonNode restored = result(b, b.post("/api/v1/containers/mig/restore", doc.toString()));
            assertThat(restored.path("device").path("devid").asLong()).isEqualTo(s.devid);
            s.sender.moveTo(socket("b"));
            result(b, b.post("/api/v1/containers/mig/devices/" + s.devid + "/resume", null));
            assertThat(a.delete("/api/v1/containers/mig/devices/" + s.devid).status()).isEqualTo(204);

            long onA = s.received.get();
            s.awaitReceived(onA + 300, "the stream flows on B");
            long total = s.finish();

            List<Long> seqsA = s.seqsOnA(), seqsB = s.seqsOnB();
            assertThat(seqsA).as("on A: from the first frame, in order").isEqualTo(NetDriver.run(0, seqsA.size()));
            assertThat(seqsB).as("on B: from the frame after A's last, in order, up to the last sent")
                    .isEqualTo(NetDriver.run(seqsA.size(), total - seqsA.size()));
            assertThat(seqsB).hasSizeGreaterThanOrEqualTo(300);

            JsonNode after = b.get("/api/v1/containers/mig/devices/" + s.devid).json();
            assertThat(after.path("features").path("negotiated")).isEqualTo(before.path("features").path("negotiated"));
            assertThat(after.path("parameters").path("mac").asString()).isNotEmpty();
            assertThat(after.path("status").valueStream().map(JsonNode::asString)).contains("DRIVER_OK");
        }
    }

    @Test
    void aMigrationMovesTheDeviceInOrderAndTheStreamGoesOnWhileTheDeviceIsBusyForEverythingElse() throws Exception {
        try (Stream s = new Stream()) {
            s.awaitReceived(300, "the stream flows on A");
            var started = a.post("/api/v1/containers/mig/devices/" + s.devid + "/migrate", migrateTo(b, 30));
            assertThat(started.status()).as(started.toString()).isEqualTo(202);
            String op = started.json().path("id").asString();

            // The target waits for the driver (the completion's answer waits for it): the device is busy here for anything else meanwhile.
            awaitStep(a, op, "complete-on-target");
            var unplug = a.delete("/api/v1/containers/mig/devices/" + s.devid);
            assertThat(unplug.status()).isEqualTo(409);
            assertThat(unplug.problemType()).isEqualTo("device-busy");
            assertThat(unplug.json().path("operation").asString()).isEqualTo(op);
            assertThat(a.post("/api/v1/containers/mig/devices/" + s.devid + "/snapshot", null).problemType()).isEqualTo("device-busy");
            assertThat(a.post("/api/v1/containers/mig/devices/" + s.devid + "/migrate", migrateTo(b, 30)).problemType())
                    .isEqualTo("device-busy");
            assertThat(a.delete("/api/v1/containers/mig").problemType()).isEqualTo("device-busy");

            s.sender.moveTo(socket("b"));
            JsonNode end = awaitEnd(a, op);
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("succeeded");
            assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString()))
                    .containsExactly("check-target", "prepare-on-target", "quiesce", "save", "announce-move", "complete-on-target",
                            "start-target", "release-source");
            assertThat(end.path("result").path("to").asString()).isEqualTo("http://127.0.0.1:" + b.port());
            assertThat(end.path("result").path("socket").asString()).as("where its driver reconnects").isEqualTo(socket("b").toString());
            assertThat(end.path("result").path("downtimeMicros").asLong()).isPositive();
            assertThat(a.get("/api/v1/containers/mig/devices/" + s.devid).problemType()).as("released at the source").isEqualTo("no-such-device");

            long onA = s.received.get();
            s.awaitReceived(onA + 300, "the stream flows on B");
            long total = s.finish();
            List<Long> seqsA = s.seqsOnA(), seqsB = s.seqsOnB();
            assertThat(seqsA).isEqualTo(NetDriver.run(0, seqsA.size()));
            assertThat(seqsB).isEqualTo(NetDriver.run(seqsA.size(), total - seqsA.size()));
        }
    }

    @Test
    void aCancelledMigrationRemovesWhatTheTargetMadeAndTheSourceResumesAsItWas() throws Exception {
        try (Stream s = new Stream()) {
            s.awaitReceived(300, "the stream flows on A");
            String op = a.post("/api/v1/containers/mig/devices/" + s.devid + "/migrate", migrateTo(b, 120)).json().path("id").asString();
            awaitStep(a, op, "complete-on-target");
            assertThat(b.get("/api/v1/containers/mig/devices/" + s.devid).status()).as("restored on the target").isEqualTo(200);

            var cancel = a.post("/api/v1/operations/" + op + "/cancel", null);
            assertThat(cancel.status()).as(cancel.toString()).isEqualTo(202);
            JsonNode end = awaitEnd(a, op);
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("cancelled");
            assertThat(end.path("problem").path("type").asString()).endsWith("/operation-cancelled");
            assertThat(b.get("/api/v1/containers/mig/devices/" + s.devid).problemType()).as("gone from the target").isEqualTo("no-such-device");

            long before = s.received.get();
            s.awaitReceived(before + 300, "the stream flows on A again");
            long total = s.finish();
            assertThat(s.seqsOnA()).as("every frame on A, once, in order").isEqualTo(NetDriver.run(0, total));
            assertThat(s.seqsOnB()).isEmpty();
            // The device is free again: it can be unplugged.
            assertThat(a.get("/api/v1/containers/mig/devices/" + s.devid).json().path("status").valueStream().map(JsonNode::asString))
                    .contains("DRIVER_OK");
        }
    }

    @Test
    void aMigrationTheTargetRefusesLeavesTheSourceRunningAndSaysWhatTheTargetSaid() throws Exception {
        long devid = a.post("/api/v1/containers/mig/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}").json().path("devid").asLong();
        var wrongContainer = a.post("/api/v1/containers/mig/devices/" + devid + "/migrate", "{\"to\":\"b\",\"container\":\"nope\"}");
        JsonNode end = awaitEnd(a, wrongContainer.json().path("id").asString());
        assertThat(end.path("state").asString()).isEqualTo("failed");
        assertThat(end.path("problem").path("type").asString()).endsWith("/target-failed");
        assertThat(end.path("problem").path("targetProblem").path("type").asString()).endsWith("/no-such-container");
        assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).containsExactly("check-target");

        var badPassword = a.post("/api/v1/containers/mig/devices/" + devid + "/migrate", "{\"to\":\"b-wrong-password\"}");
        assertThat(awaitEnd(a, badPassword.json().path("id").asString()).path("problem").path("targetStatus").asInt()).isEqualTo(401);
        assertThat(a.get("/api/v1/containers/mig/devices/" + devid).status()).isEqualTo(200);
        assertThat(a.delete("/api/v1/containers/mig/devices/" + devid).status()).as("not held any more").isEqualTo(204);

        assertThat(a.post("/api/v1/containers/mig/devices/2/migrate", "{\"to\":\"ftp://x\"}").problemType()).isEqualTo("unknown-target");
        assertThat(a.as("viewer", "vw").post("/api/v1/containers/mig/devices/2/migrate", migrateTo(b, 30)).status()).isEqualTo(403);
    }

    @Test
    void aBusMigratesOnlyToTargetsItsOperatorConfiguredAndNeverWithCredentialsFromARequest() {
        long devid = a.post("/api/v1/containers/mig/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}").json().path("devid").asLong();
        // B's address, but not as a configured target (another port): refused before any operation starts.
        var notConfigured = a.post("/api/v1/containers/mig/devices/" + devid + "/migrate", "{\"to\":\"http://127.0.0.1:1\"}");
        assertThat(notConfigured.status()).as(notConfigured.toString()).isEqualTo(422);
        assertThat(notConfigured.problemType()).isEqualTo("unknown-target");
        assertThat(notConfigured.json().path("detail").asString()).contains("configured: b, b-wrong-password");
        // Credentials in the request are refused, even with a configured target: only the operator's count.
        var withCredentials = a.post("/api/v1/containers/mig/devices/" + devid + "/migrate",
                "{\"to\":\"b\",\"credentials\":{\"user\":\"admin\",\"password\":\"pw\"}}");
        assertThat(withCredentials.problemType()).isEqualTo("invalid-parameter");
        assertThat(withCredentials.json().path("field").asString()).isEqualTo("credentials");
        // A configured target by its URL works as by its name (trailing slash aside).
        var byUrl = a.post("/api/v1/containers/mig/devices/" + devid + "/migrate", "{\"to\":\"http://127.0.0.1:" + b.port() + "/\",\"container\":\"nope\"}");
        assertThat(byUrl.status()).as(byUrl.toString()).isEqualTo(202);
        assertThat(awaitEnd(a, byUrl.json().path("id").asString()).path("problem").path("targetProblem").path("type").asString())
                .endsWith("/no-such-container");
        assertThat(a.delete("/api/v1/containers/mig/devices/" + devid).status()).isEqualTo(204);
    }

    private static String migrateTo(Api target, int driverTimeout) {
        return "{\"to\":\"b\",\"driverTimeoutSeconds\":" + driverTimeout + "}";
    }

    /** Follows a 202's operation to its end and returns its result, failing with its problem. */
    static JsonNode result(Api api, Api.Reply accepted) {
        assertThat(accepted.status()).as(accepted.toString()).isEqualTo(202);
        JsonNode end = awaitEnd(api, accepted.json().path("id").asString());
        assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("succeeded");
        return end.path("result");
    }

    static JsonNode awaitEnd(Api api, String op) {
        JsonNode[] last = new JsonNode[1];
        await(() -> !(last[0] = api.get("/api/v1/operations/" + op).json()).path("state").asString().equals("running"),
                "operation " + op + " ends");
        return last[0];
    }

    static void awaitStep(Api api, String op, String step) {
        Predicate<JsonNode> there = v -> v.path("steps").valueStream().anyMatch(s -> s.path("name").asString().equals(step));
        JsonNode[] last = new JsonNode[1];
        await(() -> there.test(last[0] = api.get("/api/v1/operations/" + op).json())
                || !last[0].path("state").asString().equals("running"), "operation " + op + " reaches " + step);
        assertThat(there.test(last[0])).as(last[0].toString()).isTrue();
    }

    /** Polls {@code condition} with a generous deadline: a busy machine is slow, not wrong. */
    static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) throw new AssertionError("timed out waiting until " + what);
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }
}
