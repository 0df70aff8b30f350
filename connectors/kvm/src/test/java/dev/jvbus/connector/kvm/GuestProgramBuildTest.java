package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed guest binary is the build of the committed source: rebuilt with guest/build.sh where
 * the toolchain it was built with (guest/vbus-guest.toolchain) is installed, and compared byte for byte.
 * Skipped, with the reason, where gcc is missing or another version would emit other code.
 */
class GuestProgramBuildTest {
    static final Path GUEST = Path.of("guest");
    static final Path COMMITTED = Path.of("src/main/resources/dev/jvbus/connector/kvm/vbus-guest.bin");

    @Test
    void committedGuestBinaryIsTheBuildOfItsSource(@TempDir Path out) throws Exception {
        assumeTrue(sh("command -v gcc && command -v ld && command -v objcopy").exit() == 0,
                "skipped: gcc, ld or objcopy is not installed, so the guest program cannot be rebuilt here");
        String recorded = Files.readString(GUEST.resolve("vbus-guest.toolchain"), StandardCharsets.UTF_8).strip();
        String here = sh("guest/build.sh --toolchain").output().strip();
        assumeTrue(recorded.equals(here), () -> "skipped: the committed guest binary was built with [" + recorded.replace('\n', ';')
                + "], this machine has [" + here.replace('\n', ';') + "]; another compiler may emit other, equally valid code");

        Result build = sh("guest/build.sh " + out.toAbsolutePath());
        assertThat(build.exit()).as("guest/build.sh: " + build.output()).isZero();
        byte[] rebuilt = Files.readAllBytes(out.resolve("vbus-guest.bin"));
        assertThat(rebuilt).as("the rebuild of guest/vbus-guest.c; if you changed the source, run guest/build.sh "
                + COMMITTED.getParent() + " and commit the binary").isEqualTo(Files.readAllBytes(COMMITTED));
        assertThat(GuestProgram.vbusGuest().bytes()).as("the binary on the class path").isEqualTo(rebuilt);
    }

    record Result(int exit, String output) {}

    private static Result sh(String command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("sh", "-c", command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("'" + command + "' did not finish within 120 s: " + output);
        }
        return new Result(p.exitValue(), output);
    }
}
