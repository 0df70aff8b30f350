package dev.jvbus.connector.vhostuser.realclients;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The test guest built by {@code guest/build-guest.sh}: an uncompressed Debian kernel and a busybox
 * initramfs with the virtio-net modules. The script runs once per JVM (it reuses a finished build
 * in {@code ~/.cache/jvbus-guest}, or {@code $JVBUS_GUEST_DIR}); when it cannot build, every test
 * asking for the image is skipped with the script's own reason.
 */
public record GuestImage(String kernelVersion, Path vmlinux, Path initramfs, boolean hasIperf3) {

    private static final Object LOCK = new Object();
    private static GuestImage built;
    private static String skipReason;

    /** The image, built if needed; skips the calling test (naming what is missing) if it cannot be had. */
    public static GuestImage require() {
        Tools.require(Tools.QEMU, Tools.BUSYBOX, Tools.CPIO);
        synchronized (LOCK) {
            if (built == null && skipReason == null) build();
            if (built == null) {
                System.out.println("[real-client] skipped: " + skipReason);
                Assumptions.abort(skipReason);
            }
            return built;
        }
    }

    /**
     * The image, with iperf3 on the host (a TAP peer's server) and in the guest; skips the calling test, saying
     * which is missing, otherwise.
     */
    public static GuestImage requireWithIperf3() {
        GuestImage image = require();
        Tools.require(Tools.IPERF3);
        Assumptions.assumeTrue(image.hasIperf3(), "the guest image has no iperf3 (rebuild guest/build-guest.sh)");
        return image;
    }

    /** The repository's root: the nearest directory upwards from the working directory holding guest/build-guest.sh. */
    public static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("guest/build-guest.sh"))) return p;
        }
        throw new IllegalStateException("guest/build-guest.sh not found above " + Path.of("").toAbsolutePath());
    }

    private static void build() {
        Path script = repoRoot().resolve("guest/build-guest.sh");
        long t0 = System.nanoTime();
        try {
            Path err = Files.createTempFile("jvbus-build-guest-", ".log");
            List<String> cmd = new java.util.ArrayList<>();
            Tools.TIMEOUT.find().ifPresent(t -> cmd.addAll(List.of(t.toString(), "--kill-after=5", "600s")));
            cmd.addAll(List.of("bash", script.toString(), "--print-dir"));
            Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                skipReason = "guest/build-guest.sh took more than 10 minutes";
                return;
            }
            List<String> errLines = Files.readAllLines(err);
            Files.deleteIfExists(err);
            if (p.exitValue() != 0 || out.isEmpty()) {
                skipReason = "guest/build-guest.sh could not build the guest: "
                        + (errLines.isEmpty() ? "exit " + p.exitValue() : errLines.getLast());
                return;
            }
            errLines.forEach(l -> System.out.println("[real-client] " + l));
            Path dir = Path.of(out.lines().reduce((a, b) -> b).orElseThrow());
            Map<String, String> env = new HashMap<>();
            for (String line : Files.readAllLines(dir.resolve("guest.env"))) {
                int eq = line.indexOf('=');
                if (eq > 0) env.put(line.substring(0, eq), line.substring(eq + 1));
            }
            built = new GuestImage(env.get("KERNEL_VERSION"), Path.of(env.get("VMLINUX")), Path.of(env.get("INITRAMFS")),
                    "yes".equals(env.get("IPERF3")));
            System.out.printf("[real-client] guest image: kernel %s, %s (%d ms to locate/build)%n",
                    built.kernelVersion(), dir, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        } catch (IOException e) {
            skipReason = "cannot run guest/build-guest.sh: " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            skipReason = "interrupted while building the guest";
        }
    }
}
