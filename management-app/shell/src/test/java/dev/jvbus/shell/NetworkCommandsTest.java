package dev.jvbus.shell;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class NetworkCommandsTest extends AdminShellTest {

    @Test
    void aNetworkIsCreatedListedShownWithItsPortsAndDeleted() {
        run("container create --name shell-n1");
        assertThat(run("network create --container shell-n1 --name lan9")).isEqualTo("network 'lan9' created in container 'shell-n1'");
        assertThat(run("network list --container shell-n1")).containsPattern("(?m)^lan9\\s+0\\s+0$");
        assertThat(run("network show --container shell-n1 --name lan9")).contains("network lan9 in container shell-n1", "no ports");
        assertThat(run("network show --container default --name lan0 --json")).contains("\"macTable\"");
        assertThat(run("network delete --container shell-n1 --name lan9")).isEqualTo("network 'lan9' deleted from container 'shell-n1'");
        assertThat(run("network list --container shell-n1")).doesNotContain("lan9");
    }

    @Test
    void aNetworkWithDevicesIsKeptUnlessForcedAndUnknownOnesAreNamed() {
        run("container create --name shell-n2");
        run("network create --container shell-n2 --name lan0");
        run("device add --container shell-n2 --type venet --network lan0");
        assertThat(refusal("network delete --container shell-n2 --name lan0")).contains("HTTP 409");
        assertThat(run("network delete --container shell-n2 --name lan0 --force")).contains("deleted");
        assertThat(refusal("network show --container shell-n2 --name nope")).contains("(no-such-network, HTTP 404)");
        assertThat(refusal("network create --container nope --name x")).contains("(no-such-container, HTTP 404)");
    }

    @Test
    void aTapPortIsAttachedInANamespaceAndDetached() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/sbin/ip")) || Files.isExecutable(Path.of("/sbin/ip")), "iproute2's ip is missing");
        String ns = "jvbus-shell-" + ProcessHandle.current().pid();
        assumeTrue(ip("netns", "add", ns) == 0, "cannot make a network namespace here (not root?)");
        try {
            run("container create --name shell-tap");
            run("network create --container shell-tap --name lan0");
            String attached = run("port attach-tap --container shell-tap --network lan0 --namespace " + ns + " --ifname tapsh0");
            assertThat(attached).matches("TAP tapsh0 in namespace " + ns + " attached to network 'lan0' as port \\d+");
            String id = attached.substring(attached.lastIndexOf(' ') + 1);
            assertThat(run("network show --container shell-tap --name lan0")).containsPattern("(?m)^" + id + "\\s+\\S*tapsh0");
            assertThat(run("port detach --container shell-tap --network lan0 --id " + id)).isEqualTo("port " + id + " detached from network 'lan0'");
            assertThat(refusal("port detach --container shell-tap --network lan0 --id " + id)).contains("(no-such-port, HTTP 404)");
        } finally {
            ip("netns", "del", ns);
        }
    }

    @Test
    void aTapPortInANamespaceThatDoesNotExistIsRefused() {
        run("container create --name shell-tap2");
        run("network create --container shell-tap2 --name lan0");
        assertThat(refusal("port attach-tap --container shell-tap2 --network lan0 --namespace jvbus-no-such-ns --ifname tapx0"))
                .contains("jvbus-no-such-ns").contains("HTTP 4");
        assertThat(refusal("port detach --container shell-tap2 --network lan0 --id x")).isEqualTo("'x' is not a valid int");
    }

    private static int ip(String... args) throws IOException, InterruptedException {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "ip";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        return p.waitFor(30, TimeUnit.SECONDS) ? p.exitValue() : -1;
    }
}
