package dev.jvbus.app.api;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.test.context.SpringBootTest;

/**
 * The app on a random localhost port with two configured users, its own data and runtime
 * directories, and an embedded default container {@code embedded}.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT, properties = {
        "spring.main.keep-alive=false",
        "jvbus.default.container=embedded",
        "jvbus.runtime-dir=${java.io.tmpdir}/jvbus-api-test/run",
        "jvbus.data-dir=${java.io.tmpdir}/jvbus-api-test/data",
        "jvbus.security.users[0].name=admin",
        "jvbus.security.users[0].password={noop}admin-secret",
        "jvbus.security.users[0].role=admin",
        "jvbus.security.users[1].name=viewer",
        "jvbus.security.users[1].password={noop}viewer-secret",
        "jvbus.security.users[1].role=viewer"})
abstract class ApiTestBase {
    @Value("${local.server.port}")
    int port;

    Api admin() { return new Api(port, "admin", "admin-secret"); }

    Api viewer() { return new Api(port, "viewer", "viewer-secret"); }

    Api anonymous() { return new Api(port, null, null); }
}
