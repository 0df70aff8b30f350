package dev.jvbus.app.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.app.NetClient;
import dev.jvbus.app.TestDirs;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortBackend;
import dev.jvbus.net.SwitchPort;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.springframework.beans.factory.annotation.Autowired;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * The app's metrics as a real Prometheus sees them. The app runs; a real Prometheus process scrapes its
 * {@code /actuator/prometheus} every second as the viewer; a test client (a virtio-net driver over the
 * shm connector: real socket, memfd, rings) sends paced frames through a device for 30 s, to a second
 * device whose driver never takes them (its rx ring fills, then the switch drops as no_rx_buffer), after
 * a few frames from a source MAC not its own (spoofed_source). Then Prometheus is asked, through its HTTP
 * API, what the client and the switch know: the rate, the drops by reason. The scraped text passes
 * {@code promtool check metrics}, and every panel of the Grafana dashboard in deploy/grafana returns series.
 *
 * <p>Skipped, naming what is missing, where prometheus or promtool is not installed.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PrometheusScrapeTest extends ApiTestBase {
    static final Path DASHBOARD = Path.of("..", "deploy", "grafana", "dashboards", "jvbus.json");
    private static final int RATE = 400;             // frames per second the client sends
    private static final int SECONDS = 30;
    private static final int SPOOFED = 5;
    /**
     * Seconds of the rate() window: long beside the 1 s scrape interval, so a scrape missed near its edge on
     * a busy machine (rate() then extrapolates by half an interval only) moves the figure by a few percent at most.
     */
    private static final int WINDOW = 20;

    @Autowired
    Bus bus;

    private RealPrometheus prometheus;
    private long sender, sink;
    /** When each paced frame was taken by the device (epoch ms, the client's clock: Prometheus runs on this machine). */
    private final List<Long> sentAt = new ArrayList<>();
    private double trafficStart;

    @BeforeAll
    void trafficWhilePrometheusScrapes() throws Exception {
        assumeTrue(RealPrometheus.unavailable().isEmpty(), () -> RealPrometheus.unavailable().orElseThrow());
        prometheus = RealPrometheus.scrape(TestDirs.fresh("jvbus-prometheus"), port, "/actuator/prometheus", "viewer", "viewer-secret");
        await(() -> RealPrometheus.scalar(prometheus.query("up{job=\"jvbus\"}")) == 1, "prometheus scrapes the app");

        // The devices come after the first scrapes, so their hotplugs are increases Prometheus sees (the annotations).
        admin().post("/api/v1/containers", "{\"name\":\"prom\"}");
        admin().post("/api/v1/containers/prom/networks", "{\"name\":\"lan0\"}");
        sender = hotplug();
        sink = hotplug();
        Api.Reply exposed = admin().post("/api/v1/exposures", "{\"kind\":\"shm\",\"container\":\"prom\"}");
        assertThat(exposed.status()).as(exposed.toString()).isEqualTo(201);
        Path socket = Path.of(exposed.json().path("path").asString());

        try (NetClient a = NetClient.open(socket, sender); NetClient b = NetClient.open(socket, sink)) {
            byte[] notMine = new byte[60];
            System.arraycopy(b.mac(), 0, notMine, 0, 6);
            notMine[6] = 0x02;
            for (int i = 0; i < SPOOFED; i++) a.sendFrame(notMine);
            long startNanos = System.nanoTime();
            long startMillis = System.currentTimeMillis();
            trafficStart = startMillis / 1000.0;
            long period = TimeUnit.SECONDS.toNanos(1) / RATE;
            for (int i = 0; i < RATE * SECONDS; i++) {
                long due = startNanos + i * period;
                for (long wait; (wait = due - System.nanoTime()) > 0; ) LockSupport.parkNanos(wait);
                a.send(b.mac(), new byte[] {(byte) i});
                sentAt.add(startMillis + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos));
            }
            // Every frame counted in Prometheus's latest sample: from here on its answers are about traffic that is over.
            long all = SPOOFED + (long) RATE * SECONDS;
            await(() -> RealPrometheus.scalar(prometheus.query(queue("jvbus_queue_buffers_total", sender, "tx0"))) == all,
                    "prometheus has scraped every frame the client sent");
        }
    }

    private long hotplug() {
        Api.Reply r = admin().post("/api/v1/containers/prom/devices", "{\"type\":\"virtio-net\",\"network\":\"lan0\"}");
        assertThat(r.status()).as(r.toString()).isEqualTo(201);
        return r.json().path("devid").asLong();
    }

    private static String queue(String metric, long devid, String queue) {
        return metric + "{job=\"jvbus\",container=\"prom\",devid=\"" + devid + "\",queue=\"" + queue + "\"}";
    }

    @AfterAll
    void stopPrometheus() {
        if (prometheus != null) prometheus.close();
    }

    @Test
    void theRateOfBuffersPrometheusComputesIsWithinTenPercentOfTheRateTheClientMeasured() {
        for (int end : new int[] {WINDOW + 2, SECONDS - 2}) {
            double at = trafficStart + end;
            long from = Math.round((at - WINDOW) * 1000), to = Math.round(at * 1000);
            double client = sentAt.stream().filter(t -> t > from && t <= to).count() / (double) WINDOW;
            double scraped = RealPrometheus.scalar(prometheus.query("rate(" + queue("jvbus_queue_buffers_total", sender, "tx0") + "[" + WINDOW + "s])", at));
            assertThat(client).as("the client's own rate over the window").isGreaterThan(RATE / 2.0);
            double scrapes = RealPrometheus.scalar(prometheus.query("sum_over_time(up{job=\"jvbus\"}[" + WINDOW + "s])", at));
            assertThat(scraped).as("rate() over %d s ending %d s into the traffic (%.0f good scrapes in it); the client measured %.1f/s",
                            WINDOW, end, scrapes, client)
                    .isCloseTo(client, within(client * 0.10));
        }
    }

    @Test
    void dropsByReasonInPrometheusAreTheSwitchsOwnCounters() {
        L2Switch lan = Networks.of(bus.requireContainer("prom")).require("lan0");
        Map<String, Double> switchSays = new HashMap<>();
        for (SwitchPort p : lan.ports()) {
            long devid = ((PortBackend.Device) p.backend().describe()).devid();
            for (DropReason r : DropReason.values()) switchSays.put("device-" + devid + "/" + r.name().toLowerCase(Locale.ROOT), (double) p.dropped(r));
        }
        assertThat(switchSays).containsEntry("device-" + sender + "/spoofed_source", (double) SPOOFED);
        assertThat(switchSays.get("device-" + sink + "/no_rx_buffer")).as("the sink's ring filled, then frames were dropped")
                .isGreaterThan(RATE * SECONDS / 2.0);

        Map<String, Double> prometheusSays = new HashMap<>();
        for (JsonNode s : prometheus.query("jvbus_port_drops_total{job=\"jvbus\",container=\"prom\",network=\"lan0\"}"))
            prometheusSays.put(s.path("metric").path("port").asString() + "/" + s.path("metric").path("reason").asString(),
                    Double.parseDouble(s.path("value").get(1).asString()));
        assertThat(prometheusSays).isEqualTo(switchSays);
    }

    @Test
    void promtoolPassesTheScrapedText() throws Exception {
        Api.Reply scrape = viewer().get("/actuator/prometheus");
        assertThat(scrape.status()).isEqualTo(200);
        assertThat(scrape.body()).contains("jvbus_queue_buffers_total{", "jvbus_port_drops_total{");
        Files.writeString(Path.of("target", "scraped-metrics.txt"), scrape.body());   // to read when promtool objects
        RealPrometheus.Result r = RealPrometheus.promtool(scrape.body(), "check", "metrics");
        assertThat(r.status()).as("promtool check metrics:\n" + r.output()).isZero();
    }

    @Test
    void everyPanelAndAnnotationOfTheGrafanaDashboardReturnsSeriesWhileTrafficFlows() throws IOException {
        JsonNode dash = new ObjectMapper().readTree(Files.readString(DASHBOARD));
        List<String> exprs = new ArrayList<>();
        for (JsonNode panel : dash.path("panels"))
            for (JsonNode t : panel.path("targets")) exprs.add(panel.path("title").asString() + " | " + t.path("expr").asString());
        for (JsonNode a : dash.path("annotations").path("list"))
            if (a.has("expr")) exprs.add("annotation " + a.path("name").asString() + " | " + a.path("expr").asString());
        assertThat(exprs).hasSizeGreaterThanOrEqualTo(12);

        double during = trafficStart + SECONDS / 2.0;
        for (String named : exprs) {
            String expr = grafanaVariables(named.substring(named.indexOf(" | ") + 3));
            JsonNode result = prometheus.query(expr, during);
            assertThat(result.size()).as("%s\n  as run: %s\n  returns no series %d s into the traffic", named, expr, SECONDS / 2).isPositive();
        }
    }

    /** What Grafana puts in for the dashboard's variables: every container, and a rate window over several scrapes. */
    static String grafanaVariables(String expr) {
        return expr.replace("$container", ".*").replace("$__rate_interval", WINDOW + "s");
    }

    private static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) throw new AssertionError("timed out waiting until " + what);
            RealPrometheus.pause();
        }
    }
}
