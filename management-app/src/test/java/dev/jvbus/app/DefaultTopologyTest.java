package dev.jvbus.app;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

@SpringBootTest(properties = {"spring.main.keep-alive=false", "jvbus.default.container=embedded"})
class DefaultTopologyTest {
    private static final Path DIR = TestDirs.fresh("jvbus-app-test");

    @DynamicPropertySource
    static void directories(DynamicPropertyRegistry r) {
        r.add("jvbus.runtime-dir", () -> DIR.resolve("run").toString());
        r.add("jvbus.data-dir", () -> DIR.resolve("data").toString());
    }

    @Autowired
    Bus bus;

    @Test
    void theDefaultContainerHasEveryDefaultModelThatIsPresentAndAPrivateSocket() throws Exception {
        var c = bus.requireContainer("embedded");
        long present = java.util.stream.Stream.of("venet", "virtio-net").filter(t -> bus.models().model(t).isPresent()).count();
        assertThat(c.devices()).hasSize((int) present);
        assertThat(c.devices()).allSatisfy(d -> assertThat(d.status().bits()).isZero());
        Path sock = DIR.resolve("run").resolve("embedded.sock");
        assertThat(Files.exists(sock)).isTrue();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(sock))).isEqualTo("rw-------");
    }
}
