package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.RuntimeDir;
import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.core.sys.UnixListener;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;

/** /api/v1/exposures: list, show, create (shm, vhost-user server and client), close; every refusal by its type. */
class ExposuresApiTest extends ApiTestBase {
    @Autowired
    RuntimeDir runtime;

    private Path run() throws Exception {
        return runtime.path().toRealPath();
    }

    /** A container with a network, a virtio-net and a venet device; returns {virtio devid, venet devid}. */
    private long[] containerWithDevices(String name) {
        assertThat(admin().post("/api/v1/containers", "{\"name\":\"" + name + "\"}").status()).isEqualTo(201);
        admin().post("/api/v1/containers/" + name + "/networks", "{\"name\":\"lan0\"}");
        long virtio = admin().post("/api/v1/containers/" + name + "/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}").json().path("devid").asLong();
        long venet = admin().post("/api/v1/containers/" + name + "/devices", "{\"type\":\"venet\",\"network\":\"lan0\"}").json().path("devid").asLong();
        return new long[] {virtio, venet};
    }

    private static String vhostUser(String container, long devid, String more) {
        return "{\"kind\":\"vhost-user\",\"container\":\"" + container + "\",\"devid\":" + devid + more + "}";
    }

    private static boolean absent(JsonNode n) {
        return n.isNull() || n.isMissingNode();
    }

    private int exposureCount() {
        return admin().get("/api/v1/exposures").json().size();
    }

    @Test
    void theDefaultExposuresAreListedAndShownToAViewer() throws Exception {
        var r = viewer().get("/api/v1/exposures");
        assertThat(r.status()).as(r.toString()).isEqualTo(200);
        List<JsonNode> embedded = r.json().valueStream().filter(e -> e.path("container").asString().equals("embedded")).toList();
        JsonNode shm = embedded.stream().filter(e -> e.path("kind").asString().equals("shm")).findFirst().orElseThrow();
        assertThat(shm.path("id").asString()).startsWith("shm-");
        assertThat(absent(shm.path("mode"))).as("shm has no mode").isTrue();
        assertThat(absent(shm.path("devid"))).as("shm exposes the whole container").isTrue();
        assertThat(shm.path("state").asString()).isEqualTo("LISTENING");
        assertThat(Path.of(shm.path("path").asString()).toRealPath()).isEqualTo(run().resolve("embedded.sock"));
        assertThat(shm.path("sessions").size()).isZero();
        JsonNode vhost = embedded.stream().filter(e -> e.path("kind").asString().equals("vhost-user")).findFirst().orElseThrow();
        assertThat(vhost.path("mode").asString()).isEqualTo("server");
        long virtio = viewer().get("/api/v1/containers/embedded/devices").json().valueStream()
                .filter(d -> d.path("type").asString().equals("virtio-net")).findFirst().orElseThrow().path("devid").asLong();
        assertThat(vhost.path("devid").asLong()).isEqualTo(virtio);

        var shown = viewer().get("/api/v1/exposures/" + shm.path("id").asString());
        assertThat(shown.status()).isEqualTo(200);
        assertThat(shown.json()).isEqualTo(shm);

        var missing = viewer().get("/api/v1/exposures/shm-9999");
        assertThat(missing.status()).isEqualTo(404);
        assertThat(missing.problemType()).isEqualTo("no-such-exposure");
        assertThat(missing.json().path("detail").asString()).contains("shm-9999", shm.path("id").asString());
        assertThat(anonymous().get("/api/v1/exposures").status()).isEqualTo(401);
    }

    @Test
    void aContainerIsExposedOnShmOnceAndClosingTheExposureRemovesItsSocket() throws Exception {
        admin().post("/api/v1/containers", "{\"name\":\"shmx\"}");
        var r = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"shmx\"}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        String id = r.json().path("id").asString();
        Path sock = Path.of(r.json().path("path").asString());
        assertThat(sock.toRealPath()).isEqualTo(run().resolve("shmx.sock"));
        assertThat(r.json().path("state").asString()).isEqualTo("LISTENING");

        var again = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"shmx\"}");
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.problemType()).isEqualTo("already-exposed");
        assertThat(again.json().path("exposure").asString()).isEqualTo(id);

        var withDevid = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"shmx\",\"devid\":1}");
        assertThat(withDevid.status()).isEqualTo(422);
        assertThat(withDevid.problemType()).isEqualTo("kind-not-applicable");
        var withMode = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"shmx\",\"mode\":\"client\"}");
        assertThat(withMode.problemType()).isEqualTo("invalid-parameter");
        assertThat(withMode.json().path("field").asString()).isEqualTo("mode");
        var elsewhere = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"shmx\",\"path\":\"other.sock\"}");
        assertThat(elsewhere.problemType()).isEqualTo("invalid-parameter");
        assertThat(elsewhere.json().path("detail").asString()).contains("shmx.sock");
        var noContainer = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"nope\"}");
        assertThat(noContainer.status()).isEqualTo(404);
        assertThat(noContainer.problemType()).isEqualTo("no-such-container");
        var unknownKind = admin().post("/api/v1/exposures", "{\"kind\":\"floppy\",\"container\":\"shmx\"}");
        assertThat(unknownKind.status()).isEqualTo(400);
        assertThat(unknownKind.problemType()).isEqualTo("invalid-parameter");
        assertThat(unknownKind.json().path("detail").asString()).contains("shm", "vhost-user");
        assertThat(admin().post("/api/v1/exposures", "{\"container\":\"shmx\"}").json().path("field").asString()).isEqualTo("kind");
        assertThat(admin().post("/api/v1/exposures", "not json").problemType()).isEqualTo("malformed-document");

        assertThat(viewer().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"embedded\"}").status()).isEqualTo(403);
        var viewerClose = viewer().delete("/api/v1/exposures/" + id);
        assertThat(viewerClose.status()).isEqualTo(403);
        assertThat(viewerClose.problemType()).isEqualTo("forbidden");
        assertThat(sock).exists();

        assertThat(admin().delete("/api/v1/exposures/" + id).status()).isEqualTo(204);
        assertThat(Files.exists(sock, LinkOption.NOFOLLOW_LINKS)).as("socket removed").isFalse();
        assertThat(admin().get("/api/v1/exposures/" + id).problemType()).isEqualTo("no-such-exposure");
        var closeAgain = admin().delete("/api/v1/exposures/" + id);
        assertThat(closeAgain.status()).isEqualTo(404);
        assertThat(closeAgain.problemType()).isEqualTo("no-such-exposure");
        admin().delete("/api/v1/containers/shmx");
    }

    @Test
    void aVirtioDeviceIsExposedOnVhostUserAndTheDeviceDocumentListsIt() throws Exception {
        long[] d = containerWithDevices("vux");
        int before = exposureCount();

        var venet = admin().post("/api/v1/exposures", vhostUser("vux", d[1], ""));
        assertThat(venet.status()).isEqualTo(422);
        assertThat(venet.problemType()).isEqualTo("kind-not-applicable");
        assertThat(venet.json().path("detail").asString()).contains("venet", "not a virtio device");
        var noDevid = admin().post("/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"vux\"}");
        assertThat(noDevid.problemType()).isEqualTo("invalid-parameter");
        assertThat(noDevid.json().path("field").asString()).isEqualTo("devid");
        var noDevice = admin().post("/api/v1/exposures", vhostUser("vux", 999, ""));
        assertThat(noDevice.status()).isEqualTo(404);
        assertThat(noDevice.problemType()).isEqualTo("no-such-device");
        var notANumber = admin().post("/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"vux\",\"devid\":\"two\"}");
        assertThat(notANumber.problemType()).isEqualTo("malformed-document");
        var badMode = admin().post("/api/v1/exposures", vhostUser("vux", d[0], ",\"mode\":\"sideways\""));
        assertThat(badMode.problemType()).isEqualTo("invalid-parameter");
        assertThat(badMode.json().path("field").asString()).isEqualTo("mode");
        var clientWithoutPath = admin().post("/api/v1/exposures", vhostUser("vux", d[0], ",\"mode\":\"client\""));
        assertThat(clientWithoutPath.problemType()).isEqualTo("invalid-parameter");
        assertThat(clientWithoutPath.json().path("field").asString()).isEqualTo("path");
        assertThat(viewer().post("/api/v1/exposures", vhostUser("vux", d[0], "")).status()).isEqualTo(403);
        assertThat(exposureCount()).as("a refused exposure leaves nothing behind").isEqualTo(before);

        var r = admin().post("/api/v1/exposures", vhostUser("vux", d[0], ""));
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        JsonNode e = r.json();
        assertThat(e.path("id").asString()).startsWith("vhost-user-server-");
        assertThat(e.path("kind").asString()).isEqualTo("vhost-user");
        assertThat(e.path("mode").asString()).isEqualTo("server");
        assertThat(e.path("devid").asLong()).isEqualTo(d[0]);
        Path sock = Path.of(e.path("path").asString());
        assertThat(sock).isEqualTo(run().resolve("vux-" + d[0] + "-virtio-net.vhost-user.sock"));
        assertThat(sock).exists();

        JsonNode device = viewer().get("/api/v1/containers/vux/devices/" + d[0]).json();
        assertThat(device.path("exposures").size()).isEqualTo(1);
        JsonNode listed = device.path("exposures").get(0);
        assertThat(listed.path("id").asString()).isEqualTo(e.path("id").asString());
        assertThat(listed.path("path").asString()).isEqualTo(sock.toString());
        assertThat(listed.path("state").asString()).isEqualTo("LISTENING");
        assertThat(listed.path("sessions").size()).isZero();
        assertThat(viewer().get("/api/v1/containers/vux/devices/" + d[1]).json().path("exposures").size()).isZero();

        var again = admin().post("/api/v1/exposures", vhostUser("vux", d[0], ",\"path\":\"second.sock\""));
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.problemType()).isEqualTo("already-exposed");
        assertThat(run().resolve("second.sock")).doesNotExist();

        assertThat(admin().delete("/api/v1/exposures/" + e.path("id").asString()).status()).isEqualTo(204);
        assertThat(viewer().get("/api/v1/containers/vux/devices/" + d[0]).json().path("exposures").size()).isZero();
        assertThat(Files.exists(sock, LinkOption.NOFOLLOW_LINKS)).isFalse();
        admin().delete("/api/v1/containers/vux");
    }

    @Test
    void socketPathsOutsideTheAllowedPlacesAreRefusedAndNothingIsMadeThere() throws Exception {
        long[] d = containerWithDevices("paths");
        Path outside = Files.createTempDirectory("jvbus-outside");
        Files.createSymbolicLink(run().resolve("out"), outside);
        Files.createSymbolicLink(run().resolve("link.sock"), outside.resolve("target.sock"));
        Files.writeString(run().resolve("file.sock"), "not a socket");
        try {
            for (String path : List.of("/etc/jvbus-evil.sock", "../escape.sock", run() + "/../escape.sock", "out/x.sock",
                    run() + "/out/x.sock", outside + "/x.sock", "link.sock", "file.sock", "x".repeat(120) + ".sock")) {
                var r = admin().post("/api/v1/exposures", vhostUser("paths", d[0], ",\"path\":\"" + path + "\""));
                assertThat(r.status()).as(path + " -> " + r).isEqualTo(422);
                assertThat(r.problemType()).as(path).isEqualTo("socket-path-not-allowed");
                assertThat(r.json().path("field").asString()).isEqualTo("path");
                assertThat(r.json().path("allowed").valueStream().map(JsonNode::asString)).as(path).contains(runtime.path().toString());
            }
            var client = admin().post("/api/v1/exposures", vhostUser("paths", d[0], ",\"mode\":\"client\",\"path\":\"/etc/evil.sock\""));
            assertThat(client.problemType()).as("client mode keeps to the same places").isEqualTo("socket-path-not-allowed");
            try (Stream<Path> made = Files.list(outside)) {
                assertThat(made).as("nothing made outside").isEmpty();
            }
            assertThat(Files.readString(run().resolve("file.sock"))).as("a file in the way is left alone").isEqualTo("not a socket");

            var mine = admin().post("/api/v1/exposures", vhostUser("paths", d[0], ",\"path\":\"mine.sock\""));
            assertThat(mine.status()).as(mine.toString()).isEqualTo(201);
            assertThat(mine.json().path("path").asString()).as("a bare name is a socket in the runtime directory")
                    .isEqualTo(run().resolve("mine.sock").toString());
            assertThat(run().resolve("mine.sock")).exists();

            long other = admin().post("/api/v1/containers/paths/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}").json().path("devid").asLong();
            var taken = admin().post("/api/v1/exposures", vhostUser("paths", other, ",\"path\":\"" + run().resolve("mine.sock") + "\""));
            assertThat(taken.status()).isEqualTo(409);
            assertThat(taken.problemType()).isEqualTo("name-taken");
            assertThat(taken.json().path("exposure").asString()).isEqualTo(mine.json().path("id").asString());

            try (UnixListener busy = UnixListener.bind(run().resolve("busy.sock"), 1)) {
                var listened = admin().post("/api/v1/exposures", vhostUser("paths", other, ",\"path\":\"busy.sock\""));
                assertThat(listened.status()).as("another process's live socket is not replaced").isEqualTo(409);
                assertThat(listened.problemType()).isEqualTo("name-taken");
                assertThat(busy.path()).exists();
            }

            var cli = admin().post("/api/v1/exposures", vhostUser("paths", other, ",\"mode\":\"client\",\"path\":\"frontend.sock\""));
            assertThat(cli.status()).as(cli.toString()).isEqualTo(201);
            assertThat(cli.json().path("id").asString()).startsWith("vhost-user-client-");
            assertThat(cli.json().path("mode").asString()).isEqualTo("client");
            assertThat(cli.json().path("state").asString()).as("no front-end listens yet").isEqualTo("RECONNECTING");
            assertThat(run().resolve("frontend.sock")).as("client mode makes no socket: the front-end does").doesNotExist();
        } finally {
            admin().delete("/api/v1/containers/paths");
            Files.deleteIfExists(run().resolve("out"));
            Files.deleteIfExists(run().resolve("link.sock"));
            Files.deleteIfExists(run().resolve("file.sock"));
            Files.deleteIfExists(run().resolve("busy.sock"));
        }
    }

    @Test
    void noMoreExposuresThanTheLimitAndTheRefusalSaysSo() {
        int limit = 12;   // ApiTestBase: jvbus.exposures.limit
        List<String> made = new ArrayList<>();
        try {
            int room = limit - exposureCount();
            for (int i = 0; i < room; i++) {
                String c = "lim" + i;
                made.add(c);
                admin().post("/api/v1/containers", "{\"name\":\"" + c + "\"}");
                var r = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"" + c + "\"}");
                assertThat(r.status()).as(r.toString()).isEqualTo(201);
            }
            made.add("limfull");
            admin().post("/api/v1/containers", "{\"name\":\"limfull\"}");
            var refused = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"limfull\"}");
            assertThat(refused.status()).isEqualTo(409);
            assertThat(refused.problemType()).isEqualTo("limit-reached");
            assertThat(refused.json().path("detail").asString()).contains("12", "jvbus.exposures.limit");
            assertThat(exposureCount()).isEqualTo(limit);
        } finally {
            made.forEach(c -> admin().delete("/api/v1/containers/" + c));
        }
    }

    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)   // the event stream blocks until its next line
    void exposuresAndTheirPeersSessionsAreEventsWithThePeersPid() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/events"))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("viewer:viewer-secret".getBytes(StandardCharsets.UTF_8)))
                .build();
        HttpResponse<Stream<String>> stream = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        Iterator<String> lines = stream.body().iterator();
        assertThat(lines.next()).contains("jvbus events");

        // A container destroyed and made again under its name is watched anew.
        admin().post("/api/v1/containers", "{\"name\":\"evx\"}");
        admin().delete("/api/v1/containers/evx");
        admin().post("/api/v1/containers", "{\"name\":\"evx\"}");
        JsonNode e = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"evx\"}").json();
        String id = e.path("id").asString();
        try (BusClient client = BusClient.connect(Path.of(e.path("path").asString()), "events-test")) {
            assertThat(client.isConnected()).isTrue();
        }
        // The session's end is told on its own thread: the close below may come first, so wait for it in the stream.
        List<String> kinds = new ArrayList<>();
        List<String> data = new ArrayList<>();
        while (!kinds.contains("session-closed") && lines.hasNext()) read(lines, kinds, data);
        assertThat(admin().delete("/api/v1/exposures/" + id).status()).isEqualTo(204);
        while (!kinds.contains("exposure-closed") && lines.hasNext()) read(lines, kinds, data);
        stream.body().close();

        assertThat(kinds).containsSubsequence("container-created", "container-destroyed", "container-created", "exposure-created",
                "session-opened", "session-closed", "exposure-closed");
        String pid = "\"pid\":" + ProcessHandle.current().pid();
        assertThat(data.get(kinds.indexOf("exposure-created"))).contains("\"exposure\":\"" + id + "\"", "\"kind\":\"shm\"", "evx.sock");
        assertThat(data.get(kinds.indexOf("session-opened"))).contains("\"subject\":\"/api/v1/exposures/" + id + "\"", pid);
        assertThat(data.get(kinds.indexOf("session-closed"))).contains(pid);
        admin().delete("/api/v1/containers/evx");
    }

    private static void read(Iterator<String> lines, List<String> kinds, List<String> data) {
        String line = lines.next();   // blocks until the next line: events are asserted as they come
        if (line.startsWith("event:")) kinds.add(line.substring(6).trim());
        if (line.startsWith("data:")) data.add(line.substring(5));
    }
}
