package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class ContainerCommandsTest extends AdminShellTest {

    @Test
    void aContainerIsCreatedListedShownAsTableOrJsonAndDeleted() {
        assertThat(run("container create --name shell-c1")).isEqualTo("container 'shell-c1' created");
        assertThat(run("container list")).contains("NAME").containsPattern("(?m)^shell-c1\\s+0\\s+-\\s+\\d+");
        assertThat(run("container show --name shell-c1")).contains("container:", "shell-c1", "no devices");
        JsonNode json = BusClient.JSON.readTree(run("container show --name shell-c1 --json"));
        assertThat(json.path("name").asString()).isEqualTo("shell-c1");
        assertThat(run("container show --name default")).containsPattern("(?m)^2\\s+virtio-net");
        assertThat(run("container delete --name shell-c1")).isEqualTo("container 'shell-c1' deleted");
        assertThat(run("container list --json")).doesNotContain("shell-c1");
    }

    @Test
    void aMissingOrTakenContainerIsTheApisProblemInOneLine() {
        assertThat(refusal("container show --name no-such")).contains("no-such").endsWith("(no-such-container, HTTP 404)");
        assertThat(refusal("container create --name default")).contains("(name-taken, HTTP 409)");
        assertThat(refusal("container create")).contains("--name");
        assertThat(run("container create --help")).contains("container create - Create an empty container", "--name or -n String");
    }
}
