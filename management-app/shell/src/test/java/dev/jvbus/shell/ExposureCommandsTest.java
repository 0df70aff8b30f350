package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ExposureCommandsTest extends AdminShellTest {

    @Test
    void aContainerOnShmAndADeviceOnVhostUserAreExposedListedShownAndClosed() {
        run("container create --name shell-e1");
        run("network create --container shell-e1 --name lan0");
        run("device add --container shell-e1 --type virtio-net --network lan0");
        String shm = run("expose shm --container shell-e1");
        assertThat(shm).matches("exposure \\S+ \\(shm\\) listening at .*/shell-e1\\.sock");
        String shmId = shm.split(" ")[1];
        String vhost = run("expose vhost-user --container shell-e1 --devid 1 --path shell-e1-net.sock");
        assertThat(vhost).matches("exposure \\S+ \\(vhost-user server\\) listening at " + app().runtimeDir() + "/shell-e1-net\\.sock");
        String vhostId = vhost.split(" ")[1];
        assertThat(Files.exists(app().runtimeDir().resolve("shell-e1-net.sock"))).isTrue();

        assertThat(run("exposure list")).contains(shmId, vhostId).containsPattern("(?m)^" + vhostId + "\\s+vhost-user\\s+server\\s+shell-e1\\s+1\\s+listening\\s+0");
        assertThat(run("exposure show --id " + vhostId)).contains("no sessions").containsPattern("(?m)^path:\\s+" + app().runtimeDir());
        assertThat(run("device show --container shell-e1 --devid 1")).contains(vhostId);
        assertThat(run("exposure close --id " + vhostId)).isEqualTo("exposure " + vhostId + " closed");
        assertThat(run("exposure close --id " + shmId)).isEqualTo("exposure " + shmId + " closed");
        assertThat(Files.exists(Path.of(app().runtimeDir() + "/shell-e1-net.sock"))).isFalse();
        assertThat(run("exposure list --json")).doesNotContain(vhostId);
    }

    @Test
    void aVenetOnVhostUserAndAnUnknownExposureAreRefused() {
        run("container create --name shell-e2");
        run("device add --container shell-e2 --type venet");
        assertThat(refusal("expose vhost-user --container shell-e2 --devid 1")).contains("(kind-not-applicable, HTTP 422)");
        assertThat(refusal("expose vhost-user --container shell-e2 --devid 1 --path ../x.sock")).contains("HTTP 422");
        assertThat(refusal("exposure close --id nope")).contains("HTTP 404");
    }
}
