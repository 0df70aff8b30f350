package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/** Connected as a viewer: reading works, every command that changes the bus is the API's 403, in one line. */
class ViewerRefusedTest extends ShellTestBase {

    @DynamicPropertySource
    static void asViewer(DynamicPropertyRegistry r) {
        connectAs(r, AppUnderTest.VIEWER, AppUnderTest.VIEWER_PASSWORD);
    }

    @Test
    void aViewerReads() {
        assertThat(run("container list")).contains("default");
        assertThat(run("device list --container default")).contains("virtio-net");
        assertThat(run("exposure list")).contains("ID");
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "container create --name by-viewer",
            "container delete --name default",
            "network create --container default --name by-viewer",
            "network delete --container default --name lan0",
            "port attach-tap --container default --network lan0 --namespace x --ifname tap0",
            "port detach --container default --network lan0 --id 1",
            "device add --container default --type venet",
            "device remove --container default --devid 1",
            "device snapshot --container default --devid 2 --file /tmp/jvbus-shell-viewer.json",
            "device resume --container default --devid 2",
            "device migrate --container default --devid 2 --to http://127.0.0.1:1",
            "expose shm --container default",
            "expose vhost-user --container default --devid 2",
            "exposure close --id x",
            "operation cancel --id x"})
    void aViewerIsRefusedEveryChange(String command) {
        assertThat(refusal(command)).endsWith("(forbidden, HTTP 403)");
    }
}
