package dev.jvbus.app.api;

import dev.jvbus.app.TestDirs;
import java.nio.file.Path;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.boot.test.context.SpringBootTest;

/**
 * The app on a random localhost port with two configured users, its own data and runtime
 * directories, an embedded default container {@code embedded}, and room for 12 exposures.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.main.keep-alive=false",
        "jvbus.default.container=embedded",
        "jvbus.security.users[0].name=admin",
        "jvbus.security.users[0].password={noop}admin-secret",
        "jvbus.security.users[0].role=admin",
        "jvbus.security.users[1].name=viewer",
        "jvbus.security.users[1].password={noop}viewer-secret",
        "jvbus.security.users[1].role=viewer",
        "jvbus.exposures.limit=12"})
abstract class ApiTestBase {
    /** Fresh per test JVM: the topology store must not carry one run's containers into the next. */
    private static final Path DIR = TestDirs.fresh("jvbus-api-test");

    @DynamicPropertySource
    static void directories(DynamicPropertyRegistry r) {
        r.add("jvbus.runtime-dir", () -> DIR.resolve("run").toString());
        r.add("jvbus.data-dir", () -> DIR.resolve("data").toString());
    }

    @Value("${local.server.port}")
    int port;

    Api admin() { return new Api(port, "admin", "admin-secret"); }

    Api viewer() { return new Api(port, "viewer", "viewer-secret"); }

    Api anonymous() { return new Api(port, null, null); }
}
