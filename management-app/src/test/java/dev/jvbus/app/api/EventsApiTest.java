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
import org.junit.jupiter.api.Test;

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

    @Test
    void theStreamNeedsCredentials() {
        var r = anonymous().get("/api/v1/events");
        assertThat(r.status()).isEqualTo(401);
        assertThat(r.problemType()).isEqualTo("unauthenticated");
    }
}
