package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;
import dev.jvbus.app.NetClient;
import dev.jvbus.connector.shm.server.ShmConnector;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.beans.factory.annotation.Autowired;

class EventsApiTest extends ApiTestBase {

    @Test
    void aViewerFollowsHotplugAndNetworkEventsAsTheyHappen() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/events"))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("viewer:viewer-secret".getBytes(StandardCharsets.UTF_8)))
                .build();
        HttpResponse<Stream<String>> r = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
        Iterator<String> lines = r.body().iterator();
        assertThat(lines.next()).contains("jvbus events");   // subscribed: what happens from now on reaches us

        admin().post("/api/v1/containers", "{\"name\":\"ev\"}");
        admin().post("/api/v1/containers/ev/networks", "{\"name\":\"lan\"}");
        long devid = admin().post("/api/v1/containers/ev/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        admin().delete("/api/v1/containers/ev/devices/" + devid);

        List<String> kinds = new ArrayList<>();
        List<String> data = new ArrayList<>();
        while (kinds.size() < 4 && lines.hasNext()) {   // blocks until the next line: the events are asserted as they come
            String line = lines.next();
            if (line.startsWith("event:")) kinds.add(line.substring(6).trim());
            if (line.startsWith("data:")) data.add(line.substring(5));
        }
        r.body().close();
        assertThat(kinds).containsExactly("container-created", "network-created", "device-added", "device-removed");
        assertThat(data.get(2)).contains("\"subject\":\"/api/v1/containers/ev/devices/" + devid + "\"", "\"type\":\"virtio-net\"");
    }

    @Autowired
    ShmConnector shm;

    /** NEEDS_RESET reaches the stream with its reason: the driver that broke a rule, and which rule. */
    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void aDeviceThatNeedsAResetIsAnEventWithItsReason() throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/v1/events"))
                .header("Authorization", "Basic " + Base64.getEncoder().encodeToString("viewer:viewer-secret".getBytes(StandardCharsets.UTF_8)))
                .build();
        HttpResponse<Stream<String>> r = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofLines());
        Iterator<String> lines = r.body().iterator();
        assertThat(lines.next()).contains("jvbus events");

        admin().post("/api/v1/containers", "{\"name\":\"evr\"}");
        admin().post("/api/v1/containers/evr/networks", "{\"name\":\"lan\"}");
        long devid = admin().post("/api/v1/containers/evr/devices", "{\"type\":\"virtio-net\",\"network\":\"lan\"}").json().path("devid").asLong();
        try (NetClient c = NetClient.open(shm.expose("evr").path(), devid)) {
            c.sendWritableTx();   // a tx buffer with a device-writable part: virtio-net must refuse it
            String kind = null, data = null;
            while (lines.hasNext()) {   // blocks until the next line; the test's timeout bounds it
                String line = lines.next();
                if (line.startsWith("event:")) kind = line.substring(6).trim();
                if (line.startsWith("data:") && "device-needs-reset".equals(kind)) {
                    data = line.substring(5);
                    break;
                }
            }
            r.body().close();
            assertThat(data).as("a device-needs-reset event").isNotNull()
                    .contains("\"subject\":\"/api/v1/containers/evr/devices/" + devid + "\"", "\"reason\":\"queue 1: ", "device-writable");
        }
    }

    @Test
    void theStreamNeedsCredentials() {
        var r = anonymous().get("/api/v1/events");
        assertThat(r.status()).isEqualTo(401);
        assertThat(r.problemType()).isEqualTo("unauthenticated");
    }
}
