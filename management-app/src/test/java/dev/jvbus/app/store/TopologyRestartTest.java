package dev.jvbus.app.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.app.JvbusApplication;
import dev.jvbus.app.NetClient;
import dev.jvbus.core.testing.TestNetns;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The app stopped and started again on the same data directory builds the same topology. */
class TopologyRestartTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @TempDir
    Path dir;

    @Test
    void aTopologyBuiltThroughTheApiIsThereAgainAfterARestartWithTheSameDevidsMacsAndSockets() throws Exception {
        long devid;
        String mac;
        try (var app = start()) {
            post(app, "/api/v1/containers", "{\"name\":\"kept\"}");
            post(app, "/api/v1/containers/kept/networks", "{\"name\":\"lan7\"}");
            post(app, "/api/v1/containers/kept/devices", "{\"type\":\"venet\",\"network\":\"lan7\"}");   // devid 1
            JsonNode d = post(app, "/api/v1/containers/kept/devices",
                    "{\"type\":\"virtio-net\",\"network\":\"lan7\",\"mtu\":1400,\"queueSize\":256,\"limit\":{\"deny\":[\"MRG_RXBUF\"]}}");
            devid = d.path("devid").asLong();
            delete(app, "/api/v1/containers/kept/devices/1");   // devid 1 is gone and must stay gone
            post(app, "/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"kept\"}");
            post(app, "/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"kept\",\"devid\":" + devid + "}");
            JsonNode embedded = get(app, "/api/v1/containers/embedded");
            assertThat(embedded.path("devices").size()).isEqualTo(2);
            mac = TopologyRecorder.macOf(app.getBean(dev.jvbus.core.bus.Bus.class).requireContainer("kept")
                    .device(new dev.jvbus.core.bus.DevId((int) devid))).orElseThrow();
        }
        try (var app = start()) {
            var bus = app.getBean(dev.jvbus.core.bus.Bus.class);
            JsonNode kept = get(app, "/api/v1/containers/kept");
            assertThat(kept.path("networks").valueStream().map(JsonNode::asString)).containsExactly("lan7");
            assertThat(kept.path("devices").valueStream().map(n -> n.path("devid").asLong())).containsExactly(devid);
            JsonNode d = get(app, "/api/v1/containers/kept/devices/" + devid);
            assertThat(d.path("parameters").path("mtu").asString()).isEqualTo("1400");
            assertThat(d.path("parameters").path("queue-size").asString()).isEqualTo("256");
            assertThat(d.path("queues").valueStream().map(q -> q.path("maxSize").asInt())).as("held to it again")
                    .containsExactly(256, 256, 256, 256, 256, 256, 256, 256, 64);
            assertThat(d.path("features").path("limited").valueStream().map(JsonNode::asString)).containsExactly("VIRTIO_NET_F_MRG_RXBUF");
            assertThat(TopologyRecorder.macOf(bus.requireContainer("kept").device(new dev.jvbus.core.bus.DevId((int) devid))))
                    .contains(mac);
            // The default container was not created a second time: the store is the truth.
            assertThat(get(app, "/api/v1/containers/embedded").path("devices").size()).isEqualTo(2);
            // A new device does not take a devid the first run used.
            assertThat(post(app, "/api/v1/containers/kept/devices", "{\"type\":\"venet\",\"network\":\"lan7\"}").path("devid").asLong())
                    .isGreaterThan(devid);
            assertThat(dir.resolve("run").resolve("kept.sock")).exists();
            assertThat(dir.resolve("run").resolve("kept-" + devid + "-virtio-net.vhost-user.sock")).exists();
        }
    }

    @Test
    void aDamagedStoreStopsTheStartWithAMessageThatNamesTheFile() throws Exception {
        Files.createDirectories(dir.resolve("data"));
        Files.writeString(dir.resolve("data").resolve("topology.json"),
                "{\"format\":\"jvbus.topology\",\"version\":2,\"nextExposureId\":1,\"containers\":[{\"name\":\"x\",\"deviceLimit\":4,"
                        + "\"nextDevid\":1,\"networks\":[],\"devices\":[],\"exposures\":[],\"colour\":\"red\"}]}");
        assertThatThrownBy(this::start).satisfies(t -> assertThat(innermost(t).getMessage()).contains("topology.json", "colour"));
        Files.writeString(dir.resolve("data").resolve("topology.json"), "{\"format\":\"jvbus.topology\",\"version\":9,\"containers\":[]}");
        assertThatThrownBy(this::start).satisfies(t -> assertThat(innermost(t).getMessage()).contains("version 9", "reads version 2"));
    }

    /**
     * Issue 12's restart test, the last step: after the restart a client passes frames again, through
     * the devices the store rebuilt (same devids and MACs, the switch holding each port to its MAC) and
     * the socket the app exposed again.
     */
    @Test
    void afterARestartAClientPassesFramesThroughTheRebuiltDevicesAgain() throws Exception {
        long a, b;
        try (var app = start()) {
            post(app, "/api/v1/containers", "{\"name\":\"wire\"}");
            post(app, "/api/v1/containers/wire/networks", "{\"name\":\"lan\"}");
            a = post(app, "/api/v1/containers/wire/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").path("devid").asLong();
            b = post(app, "/api/v1/containers/wire/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").path("devid").asLong();
            post(app, "/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"wire\"}");   // kept in the store, opened again
        }
        assertThat(dir.resolve("run").resolve("wire.sock")).as("the socket went with the app").doesNotExist();
        try (var app = start(); NetClient sender = NetClient.open(dir.resolve("run").resolve("wire.sock"), a);
             NetClient receiver = NetClient.open(dir.resolve("run").resolve("wire.sock"), b)) {
            for (int i = 0; i < 3; i++) {
                byte[] payload = ("after the restart " + i).getBytes(StandardCharsets.US_ASCII);
                sender.send(receiver.mac(), payload);
                byte[] got = receiver.receive(30);
                assertThat(got).as("frame " + i + " through the rebuilt switch").isNotNull();
                assertThat(java.util.Arrays.copyOfRange(got, 6, 12)).as("from the sender's MAC").isEqualTo(sender.mac());
                assertThat(java.util.Arrays.copyOfRange(got, 14, 14 + payload.length)).isEqualTo(payload);
            }
            JsonNode rx = get(app, "/api/v1/containers/wire/devices/" + b).path("queues").get(0);
            assertThat(rx.path("counters").path("buffers").asLong()).isEqualTo(3);
        }
    }

    /** A TAP port attached through the API is in the store and attached again, in its namespace, after a restart. */
    @Test
    void aTapPortIsAttachedAgainInItsNamespaceAfterARestart() throws Exception {
        try (TestNetns ns = TestNetns.createOrSkip()) {
            try (var app = start()) {
                post(app, "/api/v1/containers", "{\"name\":\"tapped\"}");
                post(app, "/api/v1/containers/tapped/networks", "{\"name\":\"lan\"}");
                post(app, "/api/v1/containers/tapped/networks/lan/ports", "{\"namespace\":\"" + ns.name() + "\",\"ifname\":\"jvr0\"}");
                assertThat(ns.ipResult("link", "show", "jvr0").exit()).isZero();
            }
            assertThat(ns.ipResult("link", "show", "jvr0").exit()).as("stopping the app closed the port and its interface").isNotZero();
            assertThat(Files.readString(dir.resolve("data").resolve("topology.json"))).contains("\"jvr0\"", ns.name());
            try (var app = start()) {
                JsonNode ports = get(app, "/api/v1/containers/tapped/networks/lan").path("ports");
                assertThat(ports.valueStream().map(p -> p.path("backend").path("ifname").asString(""))).containsExactly("jvr0");
                assertThat(ns.ip("link", "show", "jvr0")).as("the interface is back, up").contains("UP");
            }
        }
    }

    private static Throwable innermost(Throwable t) {
        while (t.getCause() != null) t = t.getCause();
        return t;
    }

    private ConfigurableApplicationContext start() {
        return new SpringApplicationBuilder(JvbusApplication.class).run(
                "--server.port=0", "--spring.main.keep-alive=false", "--jvbus.default.container=embedded",
                "--jvbus.runtime-dir=" + dir.resolve("run"), "--jvbus.data-dir=" + dir.resolve("data"),
                "--jvbus.security.users[0].name=admin", "--jvbus.security.users[0].password={noop}pw",
                "--jvbus.security.users[0].role=admin");
    }

    private static JsonNode get(ConfigurableApplicationContext app, String path) throws Exception {
        return send(app, "GET", path, null, 200);
    }

    private static JsonNode post(ConfigurableApplicationContext app, String path, String body) throws Exception {
        return send(app, "POST", path, body, 201);
    }

    private static void delete(ConfigurableApplicationContext app, String path) throws Exception {
        send(app, "DELETE", path, null, 204);
    }

    private static JsonNode send(ConfigurableApplicationContext app, String method, String path, String body, int expect) throws Exception {
        int port = Integer.parseInt(app.getEnvironment().getProperty("local.server.port"));
        var b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("admin:pw".getBytes(StandardCharsets.UTF_8)));
        if (body != null) b.header("Content-Type", "application/json");
        HttpResponse<String> r = HttpClient.newHttpClient().send(b.build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(method + " " + path + " -> " + r.body()).isEqualTo(expect);
        return r.body().isEmpty() ? JSON.nullNode() : JSON.readTree(r.body());
    }
}
