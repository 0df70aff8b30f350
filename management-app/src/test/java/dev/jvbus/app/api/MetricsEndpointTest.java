package dev.jvbus.app.api;

import static dev.jvbus.app.api.SaveRestoreAcrossAppsTest.await;
import static dev.jvbus.app.api.SaveRestoreAcrossAppsTest.result;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.NetClient;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * {@code /actuator/prometheus}: who may read it, and meters that follow the topology: a device's queue
 * meters from its hotplug on (at 0), gone when it is unplugged, back when it is restored; a switch
 * port's from its driver's start until its device goes; and the bus-wide hotplug, operation and downtime meters.
 */
class MetricsEndpointTest extends ApiTestBase {
    private static final String SCRAPE = "/actuator/prometheus";

    private String scrape() {
        Api.Reply r = viewer().get(SCRAPE);
        assertThat(r.status()).as(r.toString()).isEqualTo(200);
        return r.body();
    }

    /** True if the scrape has a sample of {@code metric} whose labels include each of {@code labels} ("k=\"v\""). */
    static boolean has(String text, String metric, String... labels) {
        for (String line : text.split("\n")) {
            if (!line.startsWith(metric + "{")) continue;
            String set = line.substring(metric.length(), line.indexOf('}') + 1);
            boolean all = true;
            for (String l : labels) all &= set.contains(l);
            if (all) return true;
        }
        return false;
    }

    /** The value of the first sample of {@code metric} with all of {@code labels}, or NaN. */
    static double value(String text, String metric, String... labels) {
        for (String line : text.split("\n")) {
            if (!line.startsWith(metric + "{") && !line.startsWith(metric + " ")) continue;
            int close = line.indexOf('}');
            String set = close < 0 ? "" : line.substring(metric.length(), close + 1);
            boolean all = true;
            for (String l : labels) all &= set.contains(l);
            if (all) return Double.parseDouble(line.substring(Math.max(close, metric.length()) + 1).trim().split(" ")[0]);
        }
        return Double.NaN;
    }

    private long hotplug(String container) {
        if (admin().get("/api/v1/containers/" + container).status() == 404) {
            admin().post("/api/v1/containers", "{\"name\":\"" + container + "\"}");
            admin().post("/api/v1/containers/" + container + "/networks", "{\"name\":\"lan0\"}");
        }
        Api.Reply r = admin().post("/api/v1/containers/" + container + "/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        return r.json().path("devid").asLong();
    }

    @Test
    void theScrapeNeedsAViewerOrAnAdminLogin() {
        assertThat(anonymous().get(SCRAPE).status()).isEqualTo(401);
        assertThat(viewer().as("viewer", "wrong").get(SCRAPE).status()).isEqualTo(401);
        Api.Reply v = viewer().get(SCRAPE);
        assertThat(v.status()).isEqualTo(200);
        assertThat(v.contentType()).startsWith("text/plain");
        assertThat(admin().get(SCRAPE).status()).isEqualTo(200);
        assertThat(anonymous().get("/actuator/health").status()).as("liveness stays open").isEqualTo(200);
    }

    @Test
    void aDevicesQueueMetersExistFromHotplugGoWhenItIsUnpluggedAndComeBackWhenItIsRestored() {
        long devid = hotplug("metered");
        String dev = "devid=\"" + devid + "\"";
        String in = "container=\"metered\"";

        String fresh = scrape();
        for (String queue : new String[] {"rx0", "tx0"}) {
            String q = "queue=\"" + queue + "\"";
            assertThat(value(fresh, "jvbus_queue_buffers_total", in, dev, q, "type=\"virtio-net\"")).as(queue).isZero();
            assertThat(value(fresh, "jvbus_queue_bytes_total", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_kicks_total", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_late_wakeups_total", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_lines_evicted_total", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_notifications_total", in, dev, q, "outcome=\"suppressed\"")).isZero();
            assertThat(value(fresh, "jvbus_queue_notifications_total", in, dev, q, "outcome=\"sent\"")).isZero();
            assertThat(value(fresh, "jvbus_queue_available_buffers", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_in_flight_buffers", in, dev, q)).isZero();
            assertThat(value(fresh, "jvbus_queue_size_entries", in, dev, q)).isZero();
        }
        assertThat(has(fresh, "jvbus_queue_buffers_total", dev, "queue=\"rx0\"", "direction=\"rx\"")).isTrue();
        assertThat(has(fresh, "jvbus_queue_buffers_total", dev, "queue=\"tx0\"", "direction=\"tx\"")).isTrue();
        assertThat(value(fresh, "jvbus_hotplug_seconds_count")).isGreaterThanOrEqualTo(1);
        assertThat(value(fresh, "jvbus_device_changes_total", "change=\"added\"", "type=\"virtio-net\"")).isGreaterThanOrEqualTo(1);
        assertThat(value(fresh, "jvbus_devices", "type=\"virtio-net\"", "status=\"reset\"")).isGreaterThanOrEqualTo(1);
        assertThat(value(fresh, "jvbus_containers")).isGreaterThanOrEqualTo(2);

        String path = "/api/v1/containers/metered/devices/" + devid;
        JsonNode doc = result(admin(), admin().post(path + "/snapshot", null));
        assertThat(admin().delete(path).status()).isEqualTo(204);
        String gone = scrape();
        assertThat(has(gone, "jvbus_queue_buffers_total", in, dev)).as("unplugged: its meters went with it").isFalse();
        assertThat(has(gone, "jvbus_queue_size_entries", in, dev)).isFalse();
        assertThat(value(gone, "jvbus_device_changes_total", "change=\"removed\"", "type=\"virtio-net\"")).isGreaterThanOrEqualTo(1);
        assertThat(value(gone, "jvbus_snapshot_downtime_seconds_count", "operation=\"snapshot\"")).isGreaterThanOrEqualTo(1);
        assertThat(value(gone, "jvbus_operations_total", "kind=\"snapshot\"", "outcome=\"succeeded\"")).isGreaterThanOrEqualTo(1);

        // A container never gives a devid out twice: the device comes back in a container of the same name, made afresh.
        assertThat(admin().delete("/api/v1/containers/metered").status()).isEqualTo(204);
        admin().post("/api/v1/containers", "{\"name\":\"metered\"}");
        admin().post("/api/v1/containers/metered/networks", "{\"name\":\"lan0\"}");
        result(admin(), admin().post("/api/v1/containers/metered/restore", doc.toString()));
        String back = scrape();
        assertThat(has(back, "jvbus_queue_buffers_total", in, dev, "queue=\"tx0\"")).as("restored: its meters are back").isTrue();
        assertThat(has(back, "jvbus_queue_size_entries", in, dev, "queue=\"rx0\"")).isTrue();
    }

    @Test
    void aSwitchPortsMetersCountItsFramesAndDropsAndGoWithItsDevice() throws Exception {
        long devid = hotplug("ported");
        Api.Reply exposed = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"ported\"}");
        assertThat(exposed.status()).as(exposed.toString()).isEqualTo(201);
        String port = "port=\"device-" + devid + "\"";
        String in = "container=\"ported\"";
        int frames = 7, spoofed = 3;
        try (NetClient client = NetClient.open(Path.of(exposed.json().path("path").asString()), devid)) {
            byte[] broadcast = {-1, -1, -1, -1, -1, -1};
            for (int i = 0; i < frames; i++) client.send(broadcast, new byte[] {(byte) i});
            byte[] notMine = new byte[60];
            System.arraycopy(broadcast, 0, notMine, 0, 6);
            notMine[6] = 0x02;   // a locally administered source that is not the device's
            for (int i = 0; i < spoofed; i++) client.sendFrame(notMine);
            String s = scrape();
            assertThat(value(s, "jvbus_port_frames_total", in, port, "direction=\"in\"", "network=\"lan0\"")).isEqualTo(frames);
            assertThat(value(s, "jvbus_port_bytes_total", in, port, "direction=\"in\"")).isEqualTo(frames * 60.0);
            assertThat(value(s, "jvbus_port_drops_total", in, port, "reason=\"spoofed_source\"")).isEqualTo(spoofed);
            assertThat(value(s, "jvbus_port_drops_total", in, port, "reason=\"no_rx_buffer\"")).isZero();
            assertThat(value(s, "jvbus_network_macs", in, "network=\"lan0\"")).isEqualTo(1);
            assertThat(value(s, "jvbus_queue_buffers_total", in, "devid=\"" + devid + "\"", "queue=\"tx0\"")).isEqualTo(frames + spoofed);
            assertThat(value(s, "jvbus_queue_size_entries", in, "devid=\"" + devid + "\"", "queue=\"tx0\"")).isEqualTo(NetClient.QUEUE);
            assertThat(value(s, "jvbus_queue_available_buffers", in, "devid=\"" + devid + "\"", "queue=\"rx0\""))
                    .as("every rx buffer posted, none taken").isEqualTo(NetClient.QUEUE);
            assertThat(value(s, "jvbus_exposure_sessions_total", in, "event=\"opened\"", "kind=\"shm\"")).isEqualTo(1);
            assertThat(value(s, "jvbus_exposure_sessions_live", in, "kind=\"shm\"")).isEqualTo(1);
            assertThat(value(s, "jvbus_exposure_mapped_bytes", in, "kind=\"shm\"")).as("the client's one memfd region").isEqualTo(1 << 20);
            assertThat(value(s, "jvbus_exposure_refused_total", in, "reason=\"limit\"")).isZero();
        }
        await(() -> value(scrape(), "jvbus_exposure_sessions_total", in, "event=\"closed\"") == 1, "the session's end is counted");
        String after = scrape();
        assertThat(value(after, "jvbus_exposure_mapped_bytes", in, "kind=\"shm\"")).as("unmapped with the session").isZero();
        assertThat(value(after, "jvbus_port_frames_total", in, port, "direction=\"in\"")).as("the port outlives its driver's reset").isEqualTo(frames);
        assertThat(has(after, "jvbus_queue_buffers_total", in, "devid=\"" + devid + "\"")).isTrue();
        assertThat(admin().delete("/api/v1/containers/ported/devices/" + devid).status()).isEqualTo(204);
        assertThat(has(scrape(), "jvbus_port_frames_total", in, port)).as("the port's meters go with its device").isFalse();
        assertThat(has(scrape(), "jvbus_port_drops_total", in, port)).isFalse();
    }

    @Test
    void aRingFaultIsCountedByItsReasonOnItsQueueFromTheFirstOneOn() throws Exception {
        long devid = hotplug("faulty");
        Api.Reply exposed = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"faulty\"}");
        assertThat(exposed.status()).as(exposed.toString()).isEqualTo(201);
        String in = "container=\"faulty\"", dev = "devid=\"" + devid + "\"";
        try (NetClient client = NetClient.open(Path.of(exposed.json().path("path").asString()), devid)) {
            assertThat(has(scrape(), "jvbus_queue_faults_total", in, dev)).as("no fault yet: no series of any reason").isFalse();
            client.sendWritableTx();   // virtio-net's tx rule broken: the device goes NEEDS_RESET
            await(() -> value(scrape(), "jvbus_queue_faults_total", in, dev, "queue=\"tx0\"", "reason=\"bad_descriptor\"") == 1,
                    "the fault is counted under its reason");
            String s = scrape();
            assertThat(has(s, "jvbus_queue_faults_total", in, dev, "queue=\"rx0\"")).isFalse();
            assertThat(value(s, "jvbus_devices", "type=\"virtio-net\"", "status=\"needs-reset\"")).isGreaterThanOrEqualTo(1);
        }
    }

    @Test
    void everyJvbusMetricHasHelpTextAndNoLabelCarriesAMac() {
        String s = scrape();
        Pattern mac = Pattern.compile("([0-9a-f]{2}:){5}[0-9a-f]{2}", Pattern.CASE_INSENSITIVE);
        for (String line : s.split("\n")) {
            if (!line.startsWith("jvbus_")) continue;
            assertThat(mac.matcher(line).find()).as(line).isFalse();
            String name = line.substring(0, line.indexOf(line.contains("{") ? '{' : ' '));
            String family = name.replaceAll("_(count|sum|max|bucket)$", "");
            assertThat(s).as("help text of " + name).containsPattern("# HELP (" + Pattern.quote(name) + "|" + Pattern.quote(family) + ") \\S");
        }
    }
}
