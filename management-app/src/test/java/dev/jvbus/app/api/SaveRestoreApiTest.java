package dev.jvbus.app.api;

import static dev.jvbus.app.api.SaveRestoreAcrossAppsTest.awaitEnd;
import static dev.jvbus.app.api.SaveRestoreAcrossAppsTest.result;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.service.BusVersion;
import dev.jvbus.app.service.SnapshotDocument;
import dev.jvbus.connector.shm.server.ShmConnector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** Snapshot, restore (and its dry run), resume and the operations they run, through the API of one app. */
class SaveRestoreApiTest extends ApiTestBase {
    /** The embedded default container's virtio-net device. */
    private static final String DEVICE = "/api/v1/containers/embedded/devices/2";

    @Autowired
    ShmConnector shm;

    @Autowired
    BusVersion version;

    private void container(String name) {
        if (admin().get("/api/v1/containers/" + name).status() == 404) {
            admin().post("/api/v1/containers", "{\"name\":\"" + name + "\"}");
            admin().post("/api/v1/containers/" + name + "/networks", "{\"name\":\"lan0\"}");
        }
    }

    private JsonNode snapshot() {
        return result(admin(), admin().post(DEVICE + "/snapshot", null));
    }

    @Test
    void aSnapshotAnswers202AndItsResultIsAVersionedDocumentWithChecksumAndDowntime() throws Exception {
        HttpResponse<String> raw = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + DEVICE + "/snapshot"))
                .POST(HttpRequest.BodyPublishers.noBody())
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("admin:admin-secret".getBytes(StandardCharsets.UTF_8)))
                .build(), HttpResponse.BodyHandlers.ofString());
        var accepted = new Api.Reply(raw.statusCode(), raw.headers().firstValue("Content-Type").orElse(""), raw.body());
        assertThat(accepted.status()).as(accepted.toString()).isEqualTo(202);
        String op = accepted.json().path("id").asString();
        assertThat(raw.headers().firstValue("Location")).contains("/api/v1/operations/" + op);
        assertThat(accepted.json().path("kind").asString()).isEqualTo("snapshot");
        assertThat(accepted.json().path("subject").asString()).isEqualTo(DEVICE);
        JsonNode doc = awaitEnd(admin(), op).path("result");

        assertThat(doc.path("format").asString()).isEqualTo(SnapshotDocument.FORMAT);
        assertThat(doc.path("version").asInt()).isEqualTo(1);
        assertThat(doc.path("bus").path("version").asString()).isEqualTo(version.version()).isNotEqualTo("unknown");
        assertThat(doc.path("device").path("type").asString()).isEqualTo("virtio-net");
        assertThat(doc.path("device").path("stateVersion").asInt()).isEqualTo(2);
        assertThat(doc.path("device").path("model").path("stateVersion").asInt()).isEqualTo(4);
        assertThat(doc.path("device").path("parameters").path("network").asString()).isEqualTo("lan0");
        assertThat(doc.path("device").path("parameters").path("mac").asString()).as("a generated MAC travels too").matches("([0-9a-f]{2}:){5}[0-9a-f]{2}");
        assertThat(doc.path("device").path("features").has("negotiated")).isTrue();
        assertThat(doc.path("checksum").path("algorithm").asString()).isEqualTo("SHA-256");
        assertThat(doc.path("checksum").path("value").asString()).isEqualTo(SnapshotDocument.checksum(doc.path("state")));
        assertThat(doc.path("downtimeMicros").asLong()).isNotNegative();
        assertThat(doc.path("paused").asBoolean()).isFalse();

        assertThat(viewer().get("/api/v1/operations/" + op + "/result").json()).as("the document alone, to download").isEqualTo(doc);
        assertThat(viewer().get("/api/v1/operations").json().valueStream().map(o -> o.path("id").asString())).contains(op);
        assertThat(viewer().post(DEVICE + "/snapshot", null).status()).isEqualTo(403);
    }

    @Test
    void aDryRunSaysWhatARestoreWouldDoAndChangesNothingThenTheRestoreDoesIt() {
        container("dry");
        JsonNode doc = snapshot();

        var dry = admin().post("/api/v1/containers/dry/restore?dry-run=true", doc.toString());
        assertThat(dry.status()).as(dry.toString()).isEqualTo(200);
        assertThat(dry.json().path("dryRun").asBoolean()).isTrue();
        assertThat(dry.json().path("devid").asLong()).isEqualTo(2);
        assertThat(dry.json().path("type").asString()).isEqualTo("virtio-net");
        assertThat(dry.json().path("writtenBy").asString()).isEqualTo(version.version());
        assertThat(dry.json().path("modelState").asString()).isEqualTo("virtio-net state version 4");
        assertThat(admin().get("/api/v1/containers/dry/devices").json().size()).as("a dry run changes nothing").isZero();

        JsonNode restored = result(admin(), admin().post("/api/v1/containers/dry/restore", doc.toString()));
        assertThat(restored.path("plan").path("dryRun").asBoolean()).isFalse();
        assertThat(restored.path("device").path("devid").asLong()).isEqualTo(2);
        assertThat(admin().get("/api/v1/containers/dry/devices/2").json().path("parameters").path("mac").asString())
                .isEqualTo(doc.path("device").path("parameters").path("mac").asString());

        var again = admin().post("/api/v1/containers/dry/restore", doc.toString());
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.problemType()).isEqualTo("name-taken");
        assertThat(admin().post("/api/v1/containers/nope/restore", doc.toString()).problemType()).isEqualTo("no-such-container");
        assertThat(viewer().post("/api/v1/containers/dry/restore?dry-run=true", doc.toString()).status()).isEqualTo(403);
    }

    @Test
    void aMalformedDocumentIsRefusedSayingWhereAndLeavesNothing() {
        container("bad");
        ObjectNode doc = (ObjectNode) snapshot();

        var notADocument = admin().post("/api/v1/containers/bad/restore", "[1, 2]");
        assertThat(notADocument.problemType()).as(notADocument.toString()).isEqualTo("malformed-document");
        assertThat(notADocument.json().path("where").asString()).isEqualTo("/");

        ObjectNode noState = doc.deepCopy();
        noState.remove("state");
        assertWhere(noState, "/state");

        ObjectNode tampered = doc.deepCopy();
        ((ObjectNode) tampered.path("state").path("device")).put("status", 15);
        assertWhere(tampered, "/checksum/value");

        ObjectNode unknownField = doc.deepCopy();
        ((ObjectNode) unknownField.path("state").path("device")).put("colour", "red");
        ((ObjectNode) unknownField.path("checksum")).put("value", SnapshotDocument.checksum(unknownField.path("state")));
        var r = assertWhere(unknownField, "/state/device/colour");
        assertThat(r.json().path("detail").asString()).contains("colour");

        ObjectNode newer = doc.deepCopy();
        newer.put("version", 2);
        var v = admin().post("/api/v1/containers/bad/restore", newer.toString());
        assertThat(v.status()).isEqualTo(422);
        assertThat(v.problemType()).isEqualTo("unsupported-version");

        var badOverride = admin().post("/api/v1/containers/bad/restore", "{\"snapshot\":" + doc + ",\"overrides\":{\"colour\":1}}");
        assertThat(badOverride.problemType()).isEqualTo("malformed-document");
        assertThat(badOverride.json().path("where").asString()).isEqualTo("/overrides/colour");

        assertThat(admin().get("/api/v1/containers/bad/devices").json().size()).isZero();
    }

    private Api.Reply assertWhere(JsonNode doc, String where) {
        var r = admin().post("/api/v1/containers/bad/restore", doc.toString());
        assertThat(r.status()).as(r.toString()).isEqualTo(400);
        assertThat(r.problemType()).isEqualTo("malformed-document");
        assertThat(r.json().path("where").asString()).isEqualTo(where);
        return r;
    }

    @Test
    void negotiatedFeaturesOutsideTheOperatorLimitAreRefusedByNameInTheRestoreAndItsDryRun() throws Exception {
        container("lim");
        JsonNode doc;
        try (NetDriver driver = NetDriver.open(shm.socketPath("embedded"), 2)) {
            doc = snapshot();
        }
        assertThat(doc.path("device").path("features").path("negotiated").valueStream().map(JsonNode::asString))
                .contains("VIRTIO_RING_F_EVENT_IDX");
        String denyEventIdx = "{\"snapshot\":" + doc + ",\"overrides\":{\"limit\":{\"deny\":[\"EVENT_IDX\"]}}}";
        for (String q : new String[] {"", "?dry-run=true"}) {
            var r = admin().post("/api/v1/containers/lim/restore" + q, denyEventIdx);
            assertThat(r.status()).as(r.toString()).isEqualTo(422);
            assertThat(r.problemType()).isEqualTo("feature-not-negotiable");
            assertThat(r.json().path("features").valueStream().map(JsonNode::asString)).containsExactly("VIRTIO_RING_F_EVENT_IDX");
            assertThat(r.json().path("detail").asString()).contains("VIRTIO_RING_F_EVENT_IDX", "operator limit");
        }
        var unused = admin().post("/api/v1/containers/lim/restore?dry-run=true",
                "{\"snapshot\":" + doc + ",\"overrides\":{\"limit\":{\"deny\":[\"MRG_RXBUF\"]}}}");
        assertThat(unused.status()).as(unused.toString()).isEqualTo(200);
        assertThat(unused.json().path("limitedFeatures").valueStream().map(JsonNode::asString)).containsExactly("VIRTIO_NET_F_MRG_RXBUF");
        assertThat(unused.json().path("imposedFeatures").valueStream().map(JsonNode::asString)).contains("VIRTIO_RING_F_EVENT_IDX");
        assertThat(unused.json().path("status").valueStream().map(JsonNode::asString)).contains("DRIVER_OK");
        assertThat(admin().get("/api/v1/containers/lim/devices").json().size()).isZero();
    }

    @Test
    void aRestoreCanServeTheDeviceOnAnotherVhostUserSocket() throws Exception {
        container("vh");
        JsonNode doc = snapshot();
        Path socket = shm.runtimeDirectory().resolve("restored-elsewhere.sock");
        JsonNode restored = result(admin(), admin().post("/api/v1/containers/vh/restore",
                "{\"snapshot\":" + doc + ",\"overrides\":{\"vhostUser\":{\"socket\":\"" + socket + "\"}}}"));
        assertThat(restored.path("plan").path("exposures").valueStream().map(JsonNode::asString)).containsExactly("vhost-user server on " + socket);
        assertThat(socket).exists();
        assertThat(Files.readAttributes(socket, java.nio.file.attribute.BasicFileAttributes.class).isOther()).as("a socket").isTrue();

        Path file = Files.writeString(shm.runtimeDirectory().resolve("not-a-socket"), "x");
        container("vh2");
        var refused = admin().post("/api/v1/containers/vh2/restore", "{\"snapshot\":" + doc + ",\"overrides\":{\"vhostUser\":{\"socket\":\"" + file + "\"}}}");
        assertThat(refused.status()).isEqualTo(400);
        assertThat(refused.problemType()).isEqualTo("invalid-parameter");
        assertThat(admin().get("/api/v1/containers/vh2/devices").json().size()).isZero();
    }

    /**
     * Restore overrides the connector with a TAP in another namespace: the restored device (with the
     * queue size it was created with) reaches the host through a TAP port on its network there; a
     * namespace that does not exist is refused before anything is made, and a TAP the kernel refuses
     * takes the restored device away again.
     */
    @Test
    void aRestoreCanPutTheDeviceBehindATapInAnotherNamespaceWithItsQueueSizeAndARefusedTapLeavesNothing() throws Exception {
        try (var ns = dev.jvbus.core.testing.TestNetns.createOrSkip()) {
            var plugged = admin().post("/api/v1/containers/embedded/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"queueSize\":128}");
            assertThat(plugged.status()).as(plugged.toString()).isEqualTo(201);
            long devid = plugged.json().path("devid").asLong();
            JsonNode doc = result(admin(), admin().post("/api/v1/containers/embedded/devices/" + devid + "/snapshot", null));
            assertThat(doc.path("device").path("parameters").path("queue-size").asString()).as("a creation parameter").isEqualTo("128");
            String tap = "{\"snapshot\":" + doc + ",\"overrides\":{\"tap\":{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"jvrs0\"}}}";

            container("tapr");
            var dry = admin().post("/api/v1/containers/tapr/restore?dry-run=true", tap);
            assertThat(dry.status()).as(dry.toString()).isEqualTo(200);
            assertThat(dry.json().path("exposures").valueStream().map(JsonNode::asString))
                    .containsExactly("TAP jvrs0 in network namespace " + ns.name() + " on the device's network (lan0)");
            assertThat(ns.ipResult("link", "show", "jvrs0").exit()).as("a dry run makes no interface").isNotZero();

            JsonNode restored = result(admin(), admin().post("/api/v1/containers/tapr/restore", tap));
            assertThat(restored.path("device").path("queues").valueStream().map(q -> q.path("name").asString() + "=" + q.path("maxSize").asInt()))
                    .containsExactly("rx0=128", "tx0=128", "rx1=128", "tx1=128", "rx2=128", "tx2=128", "rx3=128", "tx3=128", "ctrl=64");
            JsonNode lan = admin().get("/api/v1/containers/tapr/networks/lan0").json();
            assertThat(lan.path("ports").valueStream().map(p -> p.path("backend").path("ifname").asString("")))
                    .as(lan.toString()).contains("jvrs0");
            assertThat(lan.path("ports").valueStream().map(p -> p.path("backend").path("devid").asLong(-1))).contains(devid);
            assertThat(ns.ip("link", "show", "jvrs0")).as("the TAP is there, up, in the other namespace").contains("UP");

            container("tapr2");
            var noNamespace = admin().post("/api/v1/containers/tapr2/restore",
                    "{\"snapshot\":" + doc + ",\"overrides\":{\"tap\":{\"namespace\":\"jvbus-no-such-ns\"}}}");
            assertThat(noNamespace.status()).as(noNamespace.toString()).isEqualTo(422);
            assertThat(noNamespace.problemType()).isEqualTo("no-such-namespace");
            assertThat(noNamespace.json().path("where").asString()).isEqualTo("/overrides/tap/namespace");
            var malformed = admin().post("/api/v1/containers/tapr2/restore", "{\"snapshot\":" + doc + ",\"overrides\":{\"tap\":{\"namespace\":5}}}");
            assertThat(malformed.problemType()).isEqualTo("malformed-document");
            assertThat(malformed.json().path("where").asString()).isEqualTo("/overrides/tap/namespace");

            var badIfname = admin().post("/api/v1/containers/tapr2/restore",
                    "{\"snapshot\":" + doc + ",\"overrides\":{\"tap\":{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"a-name-far-too-long\"}}}");
            JsonNode end = awaitEnd(admin(), badIfname.json().path("id").asString());
            assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
            assertThat(end.path("problem").path("detail").asString()).contains("removed again");
            assertThat(admin().get("/api/v1/containers/tapr2/devices").json().size()).as("no device left").isZero();
            assertThat(admin().get("/api/v1/containers/tapr2/networks/lan0").json().path("ports").size()).as("no port left").isZero();
            assertThat(viewer().post("/api/v1/containers/tapr2/restore", tap).status()).isEqualTo(403);
        }
    }

    @Test
    void anOperationsProgressReachesTheEventStream() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/events"))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("viewer:viewer-secret".getBytes(StandardCharsets.UTF_8)))
                .build();
        HttpResponse<Stream<String>> r = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        Iterator<String> lines = r.body().iterator();
        assertThat(lines.next()).contains("jvbus events");
        String op = admin().post(DEVICE + "/snapshot", null).json().path("id").asString();
        List<String> kinds = new ArrayList<>();
        String event = null;
        while (!kinds.contains("operation-succeeded") && lines.hasNext()) {   // blocks until the next line
            String line = lines.next();
            if (line.startsWith("event:")) event = line.substring(6).trim();
            if (line.startsWith("data:") && line.contains("\"subject\":\"/api/v1/operations/" + op + "\"")) kinds.add(event);
        }
        r.body().close();
        assertThat(kinds).containsExactly("operation-started", "operation-step", "operation-step", "operation-succeeded");
    }

    @Test
    void unknownOperationsAndDevicesAreNotFoundAndAFinishedOperationIsNotCancelledButForgotten() {
        assertThat(viewer().get("/api/v1/operations/op-999999").problemType()).isEqualTo("no-such-operation");
        assertThat(admin().post("/api/v1/containers/embedded/devices/999/snapshot", null).problemType()).isEqualTo("no-such-device");
        assertThat(admin().post("/api/v1/containers/nope/devices/2/snapshot", null).problemType()).isEqualTo("no-such-container");
        assertThat(admin().post(DEVICE + "/resume?driver-timeout=-1", null).problemType()).isEqualTo("invalid-parameter");
        assertThat(viewer().post(DEVICE + "/resume", null).status()).isEqualTo(403);

        var accepted = admin().post(DEVICE + "/snapshot", null);
        String op = accepted.json().path("id").asString();
        awaitEnd(admin(), op);
        assertThat(viewer().post("/api/v1/operations/" + op + "/cancel", null).status()).isEqualTo(403);
        var cancel = admin().post("/api/v1/operations/" + op + "/cancel", null);
        assertThat(cancel.status()).isEqualTo(409);
        assertThat(cancel.problemType()).isEqualTo("not-ready");
        assertThat(viewer().delete("/api/v1/operations/" + op).status()).isEqualTo(403);
        assertThat(admin().delete("/api/v1/operations/" + op).status()).isEqualTo(204);
        assertThat(admin().get("/api/v1/operations/" + op).status()).isEqualTo(404);
    }

    @Test
    void resumingAPausedDeviceWithoutItsDriverWaitsAndFailsSayingSo() {
        container("wait");
        JsonNode doc;
        try (NetDriver driver = NetDriver.open(shm.socketPath("embedded"), 2)) {
            doc = snapshot();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        result(admin(), admin().post("/api/v1/containers/wait/restore", doc.toString()));
        // Restored live: it waits for a driver that never comes.
        var resume = admin().post("/api/v1/containers/wait/devices/2/resume?driver-timeout=1", null);
        assertThat(resume.status()).isEqualTo(202);
        JsonNode end = awaitEnd(admin(), resume.json().path("id").asString());
        assertThat(end.path("state").asString()).isEqualTo("failed");
        assertThat(end.path("problem").path("type").asString()).endsWith("/not-ready");
        assertThat(admin().delete("/api/v1/containers/wait/devices/2").status()).as("no longer held").isEqualTo(204);
    }

    @Test
    void aResumeThatAwaitsRunningIsAnsweredOnceTheDeviceRunsOrWithItsFailure() {
        // What a migrating bus asks: the answer itself says the device runs (step record), or why it does not.
        var runs = admin().post(DEVICE + "/resume?await-running=true", null);
        assertThat(runs.status()).as(runs.toString()).isEqualTo(202);
        JsonNode view = runs.json();
        assertThat(view.path("state").asString().equals("succeeded")
                || view.path("steps").valueStream().map(st -> st.path("name").asString()).toList().contains("record"))
                .as("answered once the device runs: " + view).isTrue();
        awaitEnd(admin(), view.path("id").asString());

        container("runwait");
        JsonNode doc;
        try (NetDriver driver = NetDriver.open(shm.socketPath("embedded"), 2)) {
            doc = snapshot();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        result(admin(), admin().post("/api/v1/containers/runwait/restore", doc.toString()));
        // Restored live, and no driver comes: the answer comes when the driver wait ends, with the failure in it.
        var fails = admin().post("/api/v1/containers/runwait/devices/2/resume?driver-timeout=1&await-running=true", null);
        assertThat(fails.status()).as(fails.toString()).isEqualTo(202);
        assertThat(fails.json().path("state").asString()).as(fails.toString()).isEqualTo("failed");
        assertThat(fails.json().path("problem").path("type").asString()).endsWith("/not-ready");
        assertThat(admin().delete("/api/v1/containers/runwait/devices/2").status()).as("no longer held").isEqualTo(204);
    }

    @Test
    void aRestoreThatAwaitsItsDriverAnswersOnceTheDeviceExistsAndRemovesItAgainWhenNoDriverComes() {
        container("await");
        JsonNode doc;
        try (NetDriver driver = NetDriver.open(shm.socketPath("embedded"), 2)) {
            doc = snapshot();   // live: its driver had started it
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        var bad = admin().post("/api/v1/containers/await/restore?await-driver=0", doc.toString());
        assertThat(bad.status()).as(bad.toString()).isEqualTo(400);
        assertThat(bad.problemType()).isEqualTo("invalid-parameter");
        assertThat(admin().post("/api/v1/containers/await/restore?await-driver=601", doc.toString()).problemType()).isEqualTo("invalid-parameter");
        assertThat(admin().post("/api/v1/containers/await/restore?await-driver=1&dry-run=true", doc.toString()).problemType())
                .isEqualTo("invalid-parameter");
        assertThat(viewer().post("/api/v1/containers/await/restore?await-driver=1", doc.toString()).status()).isEqualTo(403);
        assertThat(admin().get("/api/v1/containers/await/devices").json().size()).as("nothing restored by a refused request").isZero();

        var accepted = admin().post("/api/v1/containers/await/restore?await-driver=1", doc.toString());
        assertThat(accepted.status()).as(accepted.toString()).isEqualTo(202);
        // Answered once the device exists (so a migrating source tells the driver to come at once), still paused for it.
        assertThat(accepted.json().path("state").asString()).isEqualTo("running");
        assertThat(accepted.json().path("steps").valueStream().map(st -> st.path("name").asString())).contains("restore");
        assertThat(admin().get("/api/v1/containers/await/devices/2").status()).isEqualTo(200);

        JsonNode end = awaitEnd(admin(), accepted.json().path("id").asString());
        assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("problem").path("type").asString()).endsWith("/not-ready");
        assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).containsExactly("restore", "await-driver");
        assertThat(admin().get("/api/v1/containers/await/devices/2").status()).as("removed again: all or nothing").isEqualTo(404);
    }

    /** A live document, as a migrating source's preparation sends it (here a snapshot's: the same shape). */
    private JsonNode liveDocument() {
        try (NetDriver driver = NetDriver.open(shm.socketPath("embedded"), 2)) {
            return snapshot();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static String completion(String op, String base, String changes, String checksum) {
        return "{\"operation\":\"" + op + "\",\"base\":\"" + base + "\",\"changes\":" + changes
                + ",\"checksum\":{\"algorithm\":\"SHA-256\",\"value\":\"" + checksum + "\"}}";
    }

    @Test
    void aPreparedRestoreThatIsNeverCompletedRemovesItsDeviceByItselfOnceItsBoundPassed() {
        container("prep");
        JsonNode doc = liveDocument();
        assertThat(admin().post("/api/v1/containers/prep/restore?prepare=0", doc.toString()).problemType()).isEqualTo("invalid-parameter");
        assertThat(admin().post("/api/v1/containers/prep/restore?prepare=1&await-driver=1", doc.toString()).problemType())
                .isEqualTo("invalid-parameter");

        var accepted = admin().post("/api/v1/containers/prep/restore?prepare=1", doc.toString());
        assertThat(accepted.status()).as(accepted.toString()).isEqualTo(202);
        assertThat(accepted.json().path("state").asString()).as("answered once the device exists, paused").isEqualTo("running");
        assertThat(admin().get("/api/v1/containers/prep/devices/2").status()).isEqualTo(200);

        // Its source never pauses the device and never completes it (it failed, or lost this bus): the bound passes.
        JsonNode end = awaitEnd(admin(), accepted.json().path("id").asString());
        assertThat(end.path("state").asString()).as(end.toString()).isEqualTo("failed");
        assertThat(end.path("problem").path("type").asString()).endsWith("/not-ready");
        assertThat(end.path("problem").path("detail").asString()).contains("not completed within 1 s");
        assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).containsExactly("restore", "await-completion");
        assertThat(admin().get("/api/v1/containers/prep/devices/2").status()).as("removed by the target itself").isEqualTo(404);
    }

    @Test
    void aCompletionForAnotherStateDeviceOrOperationOrWithAWrongChecksumOrAStaleStatusIsRefusedAndAGoodOneIsTaken() {
        container("comp");
        JsonNode doc = liveDocument();
        String base = doc.path("checksum").path("value").asString();
        var accepted = admin().post("/api/v1/containers/comp/restore?prepare=10", doc.toString());
        assertThat(accepted.status()).as(accepted.toString()).isEqualTo(202);
        String op = accepted.json().path("id").asString();
        String complete = "/api/v1/containers/comp/devices/2/complete-restore";

        var stale = admin().post(complete, completion(op, "00" + base.substring(2), "{}", base));
        assertThat(stale.status()).as(stale.toString()).isEqualTo(409);
        assertThat(stale.json().path("detail").asString()).contains("stale completion");
        var damaged = admin().post(complete, completion(op, base, "{}", "00" + base.substring(2)));
        assertThat(damaged.problemType()).as(damaged.toString()).isEqualTo("malformed-document");
        assertThat(damaged.json().path("where").asString()).isEqualTo("/checksum/value");
        // The driver reset the device meanwhile: its status is not the one prepared.
        String reset = "{\"device\":{\"status\":3}}";
        String resetSum = dev.jvbus.app.service.SnapshotDocument.checksum(
                dev.jvbus.app.service.RestoreCompletion.apply(doc.get("state"), tools.jackson.databind.json.JsonMapper.builder().build().readTree(reset)));
        var renegotiated = admin().post(complete, completion(op, base, reset, resetSum));
        assertThat(renegotiated.status()).as(renegotiated.toString()).isEqualTo(409);
        assertThat(renegotiated.json().path("detail").asString()).contains("stale completion", "the status");
        assertThat(admin().post(complete, completion("op-999999", base, "{}", base)).problemType()).isEqualTo("not-ready");
        assertThat(admin().post("/api/v1/containers/comp/devices/3/complete-restore", completion(op, base, "{}", base)).problemType())
                .isEqualTo("invalid-parameter");
        assertThat(admin().post(complete, "{\"operation\":\"" + op + "\"}").problemType()).isEqualTo("malformed-document");
        assertThat(viewer().post(complete, completion(op, base, "{}", base)).status()).isEqualTo(403);
        assertThat(admin().get("/api/v1/containers/comp/devices/2").status()).as("still there, as prepared").isEqualTo(200);

        // Nothing changed since the state it was prepared from: taken. Answered once the operation ended: no driver
        // comes here, so it fails after its bound and the device goes, completed or not.
        var taken = admin().post(complete, completion(op, base, "{}", base));
        assertThat(taken.status()).as(taken.toString()).isEqualTo(200);
        assertThat(taken.json().path("driverBack").asBoolean(true)).as(taken.toString()).isFalse();
        JsonNode end = awaitEnd(admin(), op);
        assertThat(end.path("steps").valueStream().map(st -> st.path("name").asString())).containsExactly("restore", "await-completion", "await-driver");
        assertThat(end.path("problem").path("detail").asString()).contains("no driver");
        assertThat(admin().post(complete, completion(op, base, "{}", base)).problemType()).as("once ended, nothing waits").isEqualTo("not-ready");
        assertThat(admin().get("/api/v1/containers/comp/devices/2").status()).isEqualTo(404);
    }
}
