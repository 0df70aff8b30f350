package dev.jvbus.app;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The default topology's sockets are exposures of the bus, not objects the app keeps: the bus lists
 * them (what the REST API will show), the lines printed name their sockets, and shutting the app down
 * closes the bus, which closes them and removes their socket files.
 */
class DefaultTopologyExposuresTest {
    @Test
    void theDefaultSocketsAreListedByTheBusAndShutdownClosesThem() throws Exception {
        Path top = Files.createTempDirectory(Path.of("/tmp"), "jvbus-app-x");
        Path dir = top.resolve("run");
        PrintStream stdout = System.out;
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        ConfigurableApplicationContext app;
        System.setOut(new PrintStream(printed, true, StandardCharsets.UTF_8));
        try {
            // As command-line arguments: they outrank the app's application.properties, as an operator's do.
            app = new SpringApplicationBuilder(JvbusApplication.class)
                    .run("--spring.main.keep-alive=false", "--jvbus.default.container=exposed", "--jvbus.runtime-dir=" + dir,
                            // a fresh store: this is a first start, whatever an earlier run left in the user's state directory;
                            // and any free port: 8080 is not the test's
                            "--jvbus.data-dir=" + top.resolve("data"), "--server.port=0");
        } finally {
            System.setOut(stdout);
        }
        Bus bus = app.getBean(Bus.class);
        List<ExposureInfo> listed = bus.exposures().stream().map(e -> e.info()).toList();

        ExposureInfo shm = listed.getFirst();
        assertThat(shm.kind()).isEqualTo("shm");
        assertThat(shm.container()).isEqualTo("exposed");
        assertThat(shm.devid()).isEmpty();
        assertThat(shm.state()).isEqualTo(ExposureState.LISTENING);
        assertThat(shm.socket()).isEqualTo(dir.resolve("exposed.sock"));
        String out = printed.toString(StandardCharsets.UTF_8);
        assertThat(out).contains("jvbus: shm socket for container 'exposed': " + shm.socket());

        boolean virtioNet = bus.models().model("virtio-net").isPresent();
        List<ExposureInfo> vhost = listed.stream().filter(i -> i.kind().equals("vhost-user-server")).toList();
        assertThat(vhost).hasSize(virtioNet ? 1 : 0);
        for (ExposureInfo v : vhost) {
            assertThat(v.state()).isEqualTo(ExposureState.LISTENING);
            assertThat(v.devid()).isNotEqualTo(Optional.empty());
            assertThat(out).contains("jvbus: vhost-user socket for devid " + v.devid().orElseThrow() + " (virtio-net): " + v.socket());
        }
        assertThat(listed).hasSize(1 + vhost.size());
        assertThat(listed).allSatisfy(i -> assertThat(Files.exists(i.socket())).isTrue());

        app.close();

        assertThat(bus.exposures()).as("closing the app closed the bus and its exposures").isEmpty();
        assertThat(listed).allSatisfy(i -> assertThat(Files.exists(i.socket())).as(i.socket() + " removed").isFalse());
    }
}
