package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

class DeviceCommandsTest extends AdminShellTest {

    @Test
    void aDeviceIsAddedWithAFeatureLimitByShortNamesShownListedAndRemoved() {
        run("container create --name shell-d1");
        run("network create --container shell-d1 --name lan0");
        String added = run("device add --container shell-d1 --type virtio-net --network lan0 --mac 52:54:00:12:34:56 --deny MRG_RXBUF,GUEST_CSUM");
        assertThat(added).startsWith("device 1 (virtio-net) added to container 'shell-d1', MAC 52:54:00:12:34:56, features limited:")
                .contains("VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_GUEST_CSUM");
        assertThat(run("device list --container shell-d1")).containsPattern("(?m)^1\\s+virtio-net\\s+\\S+\\s+lan0\\s+52:54:00:12:34:56");
        String shown = run("device show --container shell-d1 --devid 1");
        assertThat(shown).contains("shell-d1/1", "network=lan0").containsPattern("(?m)^limited:\\s+VIRTIO_NET_F_GUEST_CSUM,VIRTIO_NET_F_MRG_RXBUF")
                .containsPattern("(?m)^0\\s+rx0\\s+");
        JsonNode json = BusClient.JSON.readTree(run("device show --container shell-d1 --devid 1 --json"));
        assertThat(json.path("features").path("offered").toString()).doesNotContain("MRG_RXBUF");
        assertThat(run("device remove --container shell-d1 --devid 1")).isEqualTo("device 1 removed from container 'shell-d1'");
        assertThat(run("device list --container shell-d1 --json")).isEqualTo("[ ]");
    }

    @Test
    void theTypesAreListedWithTheirFeatureNames() {
        assertThat(run("device types")).containsPattern("(?m)^virtio-net\\s+true\\s+rx0,tx0,rx1,tx1,rx2,tx2,rx3,tx3,ctrl\\s+.*VIRTIO_NET_F_MRG_RXBUF")
                .containsPattern("(?m)^venet\\s+false");
    }

    @Test
    void anUnknownTypeFeatureOrDeviceIsTheApisProblem() {
        assertThat(refusal("device add --container default --type nope")).contains("unknown device type 'nope'")
                .endsWith("(unknown-device-type, HTTP 400)");
        assertThat(refusal("device add --container default --type virtio-net --network lan0 --deny NOPE"))
                .contains("virtio-net has no feature NOPE").contains("(unknown-feature,");
        assertThat(refusal("device add --container default --type virtio-net --deny A --allow B")).isEqualTo("give --deny or --allow, not both");
        assertThat(refusal("device show --container default --devid 999")).contains("no device 999").contains("(no-such-device, HTTP 404)");
        assertThat(refusal("device show --container default --devid two")).isEqualTo("'two' is not a valid long");
        assertThat(refusal("device remove --container default")).contains("--devid");
    }

    @Test
    void aDedicatedCoreIsAskedForWithBusyPollAndABadValueIsRefusedNamingTheParameter() {
        run("container create --name shell-bp");
        run("network create --container shell-bp --name lan0");
        assertThat(run("device add --container shell-bp --type virtio-net --network lan0 --param busy-poll=on,poll=own"))
                .startsWith("device 1 (virtio-net) added to container 'shell-bp'");
        assertThat(run("device show --container shell-bp --devid 1")).contains("busy-poll=on", "poll=own");
        assertThat(refusal("device add --container shell-bp --type virtio-net --network lan0 --param busy-poll=always"))
                .contains("'busy-poll' must be 'on' or 'off'").contains("HTTP 400");
        assertThat(run("device list --container shell-bp --json")).as("the refused device left nothing").contains("\"devid\" : 1").doesNotContain("\"devid\" : 2");
        assertThat(run("device remove --container shell-bp --devid 1")).isEqualTo("device 1 removed from container 'shell-bp'");
    }
}
