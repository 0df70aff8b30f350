package dev.jvbus.app.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * The deployment files in {@code deploy/} are checked offline: each Kubernetes manifest against the
 * Kubernetes JSON schema of its kind (v1.32, "standalone-strict": unknown fields are errors), kept in
 * the test resources ({@code k8s-schemas/}, from yannh/kubernetes-json-schema via a mirror), and the
 * systemd unit with {@code systemd-analyze verify} where systemd is installed. And they say what the
 * deployment promises: the socket directory on the node, one capability, health probes.
 */
class DeployManifestsTest {
    private static final Path DEPLOY = Path.of("..", "deploy");
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static final String SCHEMAS = "/k8s-schemas/v1.32.2-standalone-strict/";

    /** A manifest file's one document, as JSON. */
    private static JsonNode manifest(String file) throws IOException {
        List<Object> docs = new ArrayList<>();
        new Yaml().loadAll(Files.readString(DEPLOY.resolve("k8s").resolve(file))).forEach(docs::add);
        assertThat(docs).as(file + ": one document").hasSize(1);
        return JSON.valueToTree(docs.getFirst());
    }

    /**
     * The schema of a kind. The generated schemas say {@code "$schema": "http://json-schema.org/schema#"}
     * (no draft); they are written for draft 4, which is what they are read as here.
     */
    private static Schema schema(String file) throws IOException {
        try (InputStream in = DeployManifestsTest.class.getResourceAsStream(SCHEMAS + file)) {
            assertThat(in).as("schema " + file + " in the test resources").isNotNull();
            ObjectNode s = (ObjectNode) JSON.readTree(in);
            s.remove("$schema");
            return SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_4).getSchema(SchemaLocation.of("urn:jvbus:" + file), s);
        }
    }

    private static List<String> errors(Schema schema, JsonNode doc) {
        return schema.validate(doc).stream().map(Error::toString).toList();
    }

    @Test
    void eachKubernetesManifestIsValidAgainstTheSchemaOfItsKind() throws IOException {
        for (var e : Map.of("daemonset.yaml", "daemonset-apps-v1.json", "service.yaml", "service-v1.json",
                "servicemonitor.yaml", "servicemonitor-monitoring-v1.json").entrySet()) {
            assertThat(errors(schema(e.getValue()), manifest(e.getKey()))).as(e.getKey()).isEmpty();
        }
    }

    @Test
    void theSchemaCheckRefusesWhatKubernetesWouldRefuse() throws IOException {
        Schema daemonSet = schema("daemonset-apps-v1.json");
        ObjectNode typo = (ObjectNode) manifest("daemonset.yaml");
        ((ObjectNode) typo.path("spec").path("template").path("spec")).put("hostNetwrk", true);
        assertThat(errors(daemonSet, typo)).as("an unknown field").isNotEmpty();
        ObjectNode badPort = (ObjectNode) manifest("daemonset.yaml");
        ((ObjectNode) badPort.path("spec").path("template").path("spec").path("containers").get(0).path("ports").get(0)).put("containerPort", "http");
        assertThat(errors(daemonSet, badPort)).as("a port that is not a number").isNotEmpty();
        ObjectNode monitor = (ObjectNode) manifest("servicemonitor.yaml");
        ((ObjectNode) monitor.path("spec")).remove("selector");
        assertThat(errors(schema("servicemonitor-monitoring-v1.json"), monitor)).as("a ServiceMonitor without its selector").isNotEmpty();
    }

    @Test
    void theDaemonSetRunsOneBusPerNodeWithTheSocketDirectoryOnTheNodeOneCapabilityAndHealthProbes() throws IOException {
        JsonNode pod = manifest("daemonset.yaml").path("spec").path("template").path("spec");
        JsonNode bus = pod.path("containers").get(0);
        JsonNode security = bus.path("securityContext");
        assertThat(security.path("capabilities").path("drop").valueStream().map(JsonNode::asString)).containsExactly("ALL");
        assertThat(security.path("capabilities").path("add").valueStream().map(JsonNode::asString)).as("for TAPs, and nothing more")
                .containsExactly("NET_ADMIN");
        assertThat(security.path("privileged").asBoolean(true)).isFalse();
        assertThat(security.path("allowPrivilegeEscalation").asBoolean(true)).isFalse();
        assertThat(security.path("readOnlyRootFilesystem").asBoolean()).isTrue();
        assertThat(pod.path("volumes").valueStream().map(v -> v.path("hostPath").path("path").asString("")))
                .contains("/var/run/jvbus");
        assertThat(bus.path("args").valueStream().map(JsonNode::asString)).contains("--jvbus.runtime-dir=/var/run/jvbus");
        assertThat(bus.path("livenessProbe").path("httpGet").path("path").asString()).startsWith("/actuator/health");
        assertThat(bus.path("readinessProbe").path("httpGet").path("path").asString()).startsWith("/actuator/health");
        JsonNode service = manifest("service.yaml");
        assertThat(service.path("spec").path("selector")).isEqualTo(manifest("daemonset.yaml").path("spec").path("selector").path("matchLabels"));
        assertThat(manifest("servicemonitor.yaml").path("spec").path("selector").path("matchLabels"))
                .isEqualTo(service.path("metadata").path("labels"));
    }

    /**
     * The bus's JVM options, from the one place that says them and why: the {@code BUS_JVM=(...)} line of the
     * {@code ./jvbus} script, which {@code ./jvbus run} and the benches use.
     */
    private static List<String> busJvmOptions() throws IOException {
        String line = Files.readAllLines(DeployFilesTest.REPO.resolve("jvbus")).stream().filter(l -> l.startsWith("BUS_JVM=("))
                .findFirst().orElseThrow(() -> new AssertionError("./jvbus has no BUS_JVM=(...) line"));
        List<String> options = List.of(line.substring("BUS_JVM=(".length(), line.lastIndexOf(')')).trim().split("\\s+"));
        assertThat(options).as(line).isNotEmpty().allSatisfy(o -> assertThat(o).startsWith("-"));
        return options;
    }

    @Test
    void everyWayToStartTheBusGivesItTheJvmOptionsOfJvbusRun() throws Exception {
        List<String> bus = busJvmOptions();
        String unit = Files.readString(DEPLOY.resolve("systemd").resolve("jvbus.service"));
        String exec = unit.lines().filter(l -> l.startsWith("ExecStart=")).findFirst().orElseThrow();
        List<String> unitArgs = List.of(exec.substring("ExecStart=".length()).split(" "));
        assertThat(javaOptions(unitArgs, "the systemd unit's ExecStart")).as("the systemd unit's java options").containsAll(bus);
        JsonNode env = manifest("daemonset.yaml").path("spec").path("template").path("spec").path("containers").get(0).path("env");
        String tool = env.valueStream().filter(e -> e.path("name").asString().equals("JAVA_TOOL_OPTIONS")).findFirst()
                .orElseThrow().path("value").asString();
        assertThat(List.of(tool.split(" "))).as("the DaemonSet's JAVA_TOOL_OPTIONS").containsAll(bus);
        String entry = Files.readAllLines(DeployFilesTest.REPO.resolve("Dockerfile")).stream().filter(l -> l.startsWith("ENTRYPOINT ["))
                .findFirst().orElseThrow();
        List<String> entryArgs = List.of(entry.substring(entry.indexOf('[') + 1).replace("\"", "").split(",\\s*"));
        assertThat(javaOptions(entryArgs, "the Dockerfile's ENTRYPOINT")).as("the Dockerfile's ENTRYPOINT").containsAll(bus);
    }

    /** The JVM's options in a launcher's command line: what stands between {@code java} and {@code -jar}. */
    private static List<String> javaOptions(List<String> command, String launcher) {
        assertThat(command).as(launcher + " runs the bus's jar with -jar: " + command).contains("-jar");
        return command.subList(1, command.indexOf("-jar"));
    }

    @Test
    void theSystemdUnitVerifiesAndIsHardened() throws Exception {
        String unit = Files.readString(DEPLOY.resolve("systemd").resolve("jvbus.service"));
        for (String line : List.of("ProtectSystem=strict", "RuntimeDirectory=jvbus", "StateDirectory=jvbus", "NoNewPrivileges=yes",
                "AmbientCapabilities=CAP_NET_ADMIN", "CapabilityBoundingSet=CAP_NET_ADMIN", "User=jvbus"))
            assertThat(unit.lines()).as(line).contains(line);
        Path dir = Files.createTempDirectory("jvbus-unit");
        Path copy = Files.writeString(dir.resolve("jvbus.service"), unit);
        Process p;
        try {
            p = new ProcessBuilder("systemd-analyze", "verify", copy.toString()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("systemd-analyze is not installed: " + e.getMessage());
            return;
        }
        p.getOutputStream().close();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        // verify names unknown keys and bad values on stdout/stderr (and fails for a missing ExecStart binary).
        List<String> aboutUs = out.lines().filter(l -> l.contains("jvbus.service")).toList();
        assertThat(aboutUs).as(out).isEmpty();
        assertThat(p.exitValue()).as(out).isZero();
    }
}
