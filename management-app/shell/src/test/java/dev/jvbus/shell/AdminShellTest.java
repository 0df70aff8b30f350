package dev.jvbus.shell;

import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/** Connected as the admin through JVBUS_URL, JVBUS_USER and JVBUS_PASSWORD. */
abstract class AdminShellTest extends ShellTestBase {
    @DynamicPropertySource
    static void asAdmin(DynamicPropertyRegistry r) {
        connectAs(r, AppUnderTest.ADMIN, AppUnderTest.ADMIN_PASSWORD);
    }
}
