package dev.jvbus.app.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.security.crypto.bcrypt.BCryptPasswordEncoder;
import org.yaml.snakeyaml.Yaml;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * The docker-compose stack (bus, Prometheus, Grafana), checked without a Docker engine: Debian's
 * docker-compose validates the file, every file it mounts or builds from is in the repository and
 * lands where the service reading it looks, every port is published on the host's 127.0.0.1 only,
 * every service has a healthcheck, the bus runs as a non-root user with its data and socket
 * directories as volumes, and the Prometheus configuration passes {@code promtool check config}
 * and scrapes with the password whose hash the bus is given.
 */
class DeployFilesTest {
    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final Path COMPOSE = REPO.resolve("docker-compose.yml");
    static final Path DOCKER_COMPOSE = Path.of("/usr/bin/docker-compose");
    static final Path PROMTOOL = Path.of("/usr/bin/promtool");

    @SuppressWarnings("unchecked")
    private static Map<String, Object> services() throws IOException {
        Map<String, Object> compose = new Yaml().load(Files.readString(COMPOSE));
        return (Map<String, Object>) compose.get("services");
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> service(String name) throws IOException {
        return (Map<String, Object>) services().get(name);
    }

    @SuppressWarnings("unchecked")
    private static List<String> list(Map<String, Object> service, String key) {
        Object v = service.get(key);
        return v == null ? List.of() : (List<String>) v;
    }

    /** Where a bind-mounted repository file lands in the service ({@code ./src:/target[:ro]}), or null. */
    private static String target(Map<String, Object> service, String repoPath) {
        for (String v : list(service, "volumes")) {
            String[] p = v.split(":");
            if (p[0].equals("./" + repoPath)) return p[1];
        }
        return null;
    }

    private static Run run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(REPO.toFile()).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as(cmd + " finishes").isTrue();
        return new Run(p.exitValue(), out);
    }

    record Run(int status, String output) { }

    @Test
    void dockerComposeValidatesTheFile() throws Exception {
        assumeTrue(Files.isExecutable(DOCKER_COMPOSE), DOCKER_COMPOSE + " is not installed (.ci/install-deps installs Debian's docker-compose)");
        Run r = run(List.of(DOCKER_COMPOSE.toString(), "-f", COMPOSE.toString(), "config", "-q"));
        assertThat(r.status()).as("docker-compose config:\n" + r.output()).isZero();
        Run services = run(List.of(DOCKER_COMPOSE.toString(), "-f", COMPOSE.toString(), "config", "--services"));
        assertThat(services.output().lines().toList()).containsExactlyInAnyOrder("jvbus", "prometheus", "grafana");
    }

    @Test
    void everyFileTheStackMountsOrBuildsFromIsInTheRepository() throws Exception {
        List<String> mounted = new ArrayList<>();
        for (Object s : services().values()) {
            @SuppressWarnings("unchecked") Map<String, Object> service = (Map<String, Object>) s;
            for (String v : list(service, "volumes")) {
                String source = v.split(":")[0];
                if (!source.startsWith("./")) continue;   // a named volume
                mounted.add(source);
                assertThat(REPO.resolve(source)).as(v).exists();
            }
        }
        assertThat(mounted).contains("./deploy/prometheus/prometheus.yml", "./deploy/prometheus/scrape-password",
                "./deploy/grafana/provisioning/datasources", "./deploy/grafana/provisioning/dashboards", "./deploy/grafana/dashboards");
        assertThat(service("jvbus").get("build")).isEqualTo(".");
        String dockerfile = Files.readString(REPO.resolve("Dockerfile"));
        String pom = Files.readString(REPO.resolve("management-app/pom.xml"));
        assertThat(dockerfile).contains("COPY management-app/target/jvbus-management-app.jar ");
        assertThat(pom).as("the jar the Dockerfile copies is the one the build makes").contains("<finalName>jvbus-management-app</finalName>");
    }

    @Test
    void everyServiceHasAHealthcheckAndPublishesOnLocalhostOnly() throws Exception {
        for (Map.Entry<String, Object> e : services().entrySet()) {
            @SuppressWarnings("unchecked") Map<String, Object> service = (Map<String, Object>) e.getValue();
            assertThat(service).as(e.getKey() + " has a healthcheck").containsKey("healthcheck");
            assertThat(list(service, "ports")).as(e.getKey() + " publishes a port").isNotEmpty()
                    .allSatisfy(p -> assertThat(p).as(e.getKey()).startsWith("127.0.0.1:"));
        }
    }

    @Test
    void theBusRunsAsANonRootUserWithItsDataAndSocketDirectoriesAsVolumes() throws Exception {
        List<String> lines = Files.readAllLines(REPO.resolve("Dockerfile"));
        String user = lines.stream().filter(l -> l.startsWith("USER ")).reduce((a, b) -> b).orElseThrow().substring(5).trim();
        assertThat(user).isNotIn("root", "0");
        String dockerfile = String.join("\n", lines);
        assertThat(dockerfile).contains("--jvbus.data-dir=/var/lib/jvbus", "--jvbus.runtime-dir=/run/jvbus",
                "VOLUME [\"/var/lib/jvbus\", \"/run/jvbus\"]");
        assertThat(list(service("jvbus"), "volumes")).contains("jvbus-data:/var/lib/jvbus", "jvbus-run:/run/jvbus");
    }

    @Test
    void prometheusConfigPassesPromtoolAndScrapesWithThePasswordTheBusKnows() throws Exception {
        Path config = REPO.resolve("deploy/prometheus/prometheus.yml");
        if (Files.isExecutable(PROMTOOL)) {
            Run r = run(List.of(PROMTOOL.toString(), "check", "config", config.toString()));
            assertThat(r.status()).as("promtool check config:\n" + r.output()).isZero();
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> job = ((List<Map<String, Object>>) new Yaml().<Map<String, Object>>load(Files.readString(config)).get("scrape_configs")).get(0);
        assertThat(job.get("metrics_path")).isEqualTo("/actuator/prometheus");
        @SuppressWarnings("unchecked") Map<String, Object> auth = (Map<String, Object>) job.get("basic_auth");
        Map<String, Object> prometheus = service("prometheus");
        assertThat(target(prometheus, "deploy/prometheus/prometheus.yml")).isEqualTo("/etc/prometheus/prometheus.yml");
        assertThat(target(prometheus, "deploy/prometheus/scrape-password")).as("mounted where the config reads it").isEqualTo(auth.get("password_file"));

        @SuppressWarnings("unchecked") Map<String, Object> env = (Map<String, Object>) service("jvbus").get("environment");
        assertThat(env.get("JVBUS_SECURITY_USERS_0_NAME")).isEqualTo(auth.get("username"));
        assertThat(env.get("JVBUS_SECURITY_USERS_0_ROLE")).as("a viewer reads the metrics").isEqualTo("viewer");
        String hash = ((String) env.get("JVBUS_SECURITY_USERS_0_PASSWORD")).replace("$$", "$");
        assertThat(hash).startsWith("{bcrypt}");
        String password = Files.readString(REPO.resolve("deploy/prometheus/scrape-password")).strip();
        assertThat(new BCryptPasswordEncoder().matches(password, hash.substring("{bcrypt}".length())))
                .as("the bus is given the hash of the password Prometheus sends").isTrue();
    }

    @Test
    void grafanaIsProvisionedWithTheDatasourceAndTheDashboardItNames() throws Exception {
        Map<String, Object> grafana = service("grafana");
        Path provisioning = REPO.resolve("deploy/grafana/provisioning");
        @SuppressWarnings("unchecked")
        Map<String, Object> datasource = ((List<Map<String, Object>>) new Yaml().<Map<String, Object>>load(
                Files.readString(provisioning.resolve("datasources/prometheus.yml"))).get("datasources")).get(0);
        assertThat(datasource.get("url")).isEqualTo("http://prometheus:9090");
        @SuppressWarnings("unchecked")
        Map<String, Object> provider = ((List<Map<String, Object>>) new Yaml().<Map<String, Object>>load(
                Files.readString(provisioning.resolve("dashboards/jvbus.yml"))).get("providers")).get(0);
        @SuppressWarnings("unchecked") String dashboards = (String) ((Map<String, Object>) provider.get("options")).get("path");
        assertThat(target(grafana, "deploy/grafana/dashboards")).as("dashboards mounted where the provider looks").isEqualTo(dashboards);
        assertThat(target(grafana, "deploy/grafana/provisioning/datasources")).isEqualTo("/etc/grafana/provisioning/datasources");
        assertThat(target(grafana, "deploy/grafana/provisioning/dashboards")).isEqualTo("/etc/grafana/provisioning/dashboards");

        JsonNode dash = new ObjectMapper().readTree(Files.readString(REPO.resolve("deploy/grafana/dashboards/jvbus.json")));
        assertThat(dash.path("panels").size()).isGreaterThanOrEqualTo(10);
        for (JsonNode panel : dash.path("panels")) {
            assertThat(panel.path("datasource").path("uid").asString()).as(panel.path("title").asString())
                    .isEqualTo(datasource.get("uid"));
            assertThat(panel.path("targets").size()).as(panel.path("title").asString()).isPositive();
        }
        assertThat(dash.path("annotations").path("list").valueStream().map(a -> a.path("name").asString())).contains("Hotplug");
    }

    /**
     * A stall (a queue that slept with work pending because its doorbell did not ring) shows on the dashboard as its
     * rate of late wake-ups, per queue: the counter was exported (jvbus_queue_late_wakeups_total) with no panel, so
     * an operator looking at Grafana never saw it. PrometheusScrapeTest runs the panel's query against a real Prometheus.
     */
    @Test
    void theDashboardChartsLateWakeupsPerQueue() throws Exception {
        JsonNode dash = new ObjectMapper().readTree(Files.readString(REPO.resolve("deploy/grafana/dashboards/jvbus.json")));
        List<JsonNode> charting = dash.path("panels").valueStream()
                .filter(p -> p.path("targets").valueStream().anyMatch(t -> t.path("expr").asString().contains("jvbus_queue_late_wakeups_total")))
                .toList();
        assertThat(charting).as("a panel charting jvbus_queue_late_wakeups_total").singleElement().satisfies(p -> {
            assertThat(p.path("type").asString()).isEqualTo("timeseries");
            String expr = p.path("targets").get(0).path("expr").asString();
            assertThat(expr).contains("rate(jvbus_queue_late_wakeups_total{container=~\"$container\"}", "by (container, devid", "queue)");
        });
        List<Integer> ids = dash.path("panels").valueStream().map(p -> p.path("id").asInt()).toList();
        assertThat(ids).as("panel ids unique").doesNotHaveDuplicates();
    }
}
