package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

class DeviceStateCommandsTest extends AdminShellTest {

    @TempDir
    Path tmp;

    private void containerWithNetwork(String name) {
        run("container create --name " + name);
        run("network create --container " + name + " --name lan0");
    }

    @Test
    void aSnapshotIsWrittenToAFileThatADryRunExplainsAndARestoreBringsBack() throws Exception {
        containerWithNetwork("shell-s1");
        run("device add --container shell-s1 --type virtio-net --network lan0 --mac 52:54:00:aa:bb:01");
        Path file = tmp.resolve("dev1.json");
        assertThat(run("device snapshot --container shell-s1 --devid 1 --file " + file))
                .matches("snapshot of shell-s1/1 \\(virtio-net\\) written to " + file + ": downtime \\d+ µs, checksum [0-9a-f]{12}…");
        JsonNode doc = BusClient.JSON.readTree(Files.readString(file));
        assertThat(doc.path("device").path("parameters").path("mac").asString()).isEqualTo("52:54:00:aa:bb:01");
        assertThat(doc.path("checksum").path("algorithm").asString()).isEqualTo("SHA-256");

        containerWithNetwork("shell-s2");
        String dry = run("device restore --container shell-s2 --file " + file + " --dry-run");
        assertThat(dry).containsPattern("(?m)^dry run:\\s+true").containsPattern("(?m)^device:\\s+shell-s2/1").containsPattern("(?m)^type:\\s+virtio-net");
        assertThat(run("device list --container shell-s2 --json")).as("a dry run changes nothing").isEqualTo("[ ]");

        String restored = run("device restore --container shell-s2 --file " + file);
        assertThat(restored).containsPattern("(?m)^dry run:\\s+false").containsPattern("(?m)^device:\\s+shell-s2/1");
        assertThat(run("device show --container shell-s2 --devid 1")).contains("mac=52:54:00:aa:bb:01");

        // It had no driver when saved, so it needs none to run again.
        String resumed = run("device resume --container shell-s2 --devid 1 --driver-timeout 5");
        assertThat(resumed).matches("device shell-s2/1 runs \\(operation \\S+, steps: \\[await-driver, resume, record\\]\\)");
        String op = resumed.split(" ")[4].replace(",", "");
        assertThat(run("operation show --id " + op)).containsPattern("(?m)^kind:\\s+resume").containsPattern("(?m)^state:\\s+succeeded")
                .containsPattern("(?m)^await-driver\\s+\\d{4}-");
        assertThat(run("operation list")).containsPattern("(?m)^" + op + "\\s+resume\\s+succeeded\\s+record\\s+/api/v1/containers/shell-s2/devices/1");
        assertThat(refusal("operation cancel --id " + op)).contains("already ended (succeeded)").contains("(not-ready, HTTP 409)");
    }

    @Test
    void aBadFileADeviceThatIsNotThereAndAFinishedOperationAreRefused() throws Exception {
        containerWithNetwork("shell-s3");
        Path notJson = Files.writeString(tmp.resolve("x.json"), "not json");
        assertThat(refusal("device restore --container shell-s3 --file " + notJson)).startsWith(notJson + " is not a JSON document");
        assertThat(refusal("device restore --container shell-s3 --file " + tmp.resolve("missing.json"))).startsWith("cannot read");
        assertThat(refusal("device restore --container shell-s3 --file " + Files.writeString(tmp.resolve("arr.json"), "[1,2]")))
                .contains("(malformed-document, HTTP 4");
        assertThat(refusal("device snapshot --container shell-s3 --devid 999 --file " + tmp.resolve("s.json"))).contains("(no-such-device, HTTP 404)");
        assertThat(refusal("device snapshot --container shell-s3 --devid 1 --file " + tmp)).contains("is a directory");
        assertThat(refusal("operation show --id nope")).contains("HTTP 404");
    }

    @Test
    void aMigrationMovesTheDeviceToTheTargetsContainer() {
        containerWithNetwork("shell-m1");
        containerWithNetwork("shell-m1-there");
        run("device add --container shell-m1 --type virtio-net --network lan0 --mac 52:54:00:aa:bb:02");
        // To this same bus's API, into another container (a device without a driver needs none there).
        assertThat(run("device migrate --container shell-m1 --devid 1 --to self --target-container shell-m1-there"))
                .matches("device shell-m1/1 migrated to self \\(operation \\S+, steps: \\[check-target, .*\\]\\)");
        assertThat(run("device show --container shell-m1-there --devid 1")).contains("mac=52:54:00:aa:bb:02");
        assertThat(run("device list --container shell-m1 --json")).isEqualTo("[ ]");
    }

    @Test
    void aMigrationToATargetThatDoesNotAnswerIsFollowedAndCancelled() throws Exception {
        containerWithNetwork("shell-m3");
        run("device add --container shell-m3 --type virtio-net --network lan0");
        String started = run("device migrate --container shell-m3 --devid 1 --to hung --detach");
        assertThat(started).matches("operation \\S+ \\(migrate\\) running; follow it with: operation show --id \\S+");
        String op = started.split(" ")[1];
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!run("operation show --id " + op).contains("check-target") && System.nanoTime() < deadline) Thread.sleep(50);
        assertThat(run("operation show --id " + op)).containsPattern("(?m)^kind:\\s+migrate").containsPattern("(?m)^state:\\s+running")
                .containsPattern("(?m)^check-target\\s+\\d{4}-\\S+\\s+-$");
        assertThat(run("operation list")).containsPattern("(?m)^" + op + "\\s+migrate\\s+running\\s+check-target");
        assertThat(run("operation cancel --id " + op)).startsWith("operation " + op + " cancelled");
        assertThat(run("operation show --id " + op + " --json")).contains("\"state\" : \"cancelled\"");
        assertThat(run("device list --container shell-m3")).as("the device stays here").containsPattern("(?m)^1\\s+virtio-net");
    }

    @Test
    void aMigrationTheTargetRefusesEndsWithTheTargetsProblem() {
        containerWithNetwork("shell-m2");
        run("device add --container shell-m2 --type virtio-net --network lan0");
        assertThat(refusal("device migrate --container shell-m2 --devid 1 --to self --target-container nope"))
                .contains("failed").contains("the target said").contains("nope").contains("(target-failed,");
        assertThat(refusal("device migrate --container shell-m2 --devid 1 --to http://elsewhere:8080")).as("not a configured target")
                .contains("(unknown-target, HTTP 422)");
        assertThat(run("device list --container shell-m2")).containsPattern("(?m)^1\\s+virtio-net");
    }
}
