package dev.jvbus.connector.vhostuser.realclients;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;

/**
 * The external programs the real-client tests use, found on this machine, and JUnit assumptions
 * that skip a test with a message naming what is missing and how to get it
 * ({@code .ci/install-deps} installs all of them from Debian's packages).
 */
public enum Tools {
    QEMU("qemu-system-x86_64", "qemu-system-x86"),
    TESTPMD("dpdk-testpmd", "dpdk-dev"),
    BUSYBOX("busybox", "busybox-static"),
    CPIO("cpio", "cpio"),
    TIMEOUT("timeout", "coreutils"),
    STDBUF("stdbuf", "coreutils"),
    IPERF3("iperf3", "iperf3"),
    IP("ip", "iproute2");

    /** Where Debian's qemu-system-data puts qboot (the small firmware that boots a vmlinux through PVH fast). */
    private static final List<Path> QBOOT = List.of(Path.of("/usr/share/qemu/qboot.rom"), Path.of("/usr/share/qemu-firmware/qboot.rom"));

    private final String command;
    private final String debianPackage;

    Tools(String command, String debianPackage) {
        this.command = command;
        this.debianPackage = debianPackage;
    }

    public String command() { return command; }

    public String debianPackage() { return debianPackage; }

    /** The executable on the PATH (or in /usr/sbin, /sbin), if there is one. */
    public Optional<Path> find() {
        List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(File.pathSeparator)));
        dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/local/bin"));
        for (String dir : dirs) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, command);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) return Optional.of(p);
        }
        return Optional.empty();
    }

    public boolean present() { return find().isPresent(); }

    /** The path of the tool; a failed assumption (the test is skipped, not failed) when it is missing. */
    public Path path() {
        require(this);
        return find().orElseThrow();
    }

    /** Skips the calling test, naming every missing tool and its Debian package, unless all are present. */
    public static void require(Tools... tools) {
        List<String> missing = new ArrayList<>();
        for (Tools t : tools) if (!t.present()) missing.add(t.command + " (Debian package " + t.debianPackage + ")");
        if (!missing.isEmpty()) {
            String msg = "skipped: missing " + String.join(", ", missing) + "; run .ci/install-deps as root";
            System.out.println("[real-client] " + msg);
            Assumptions.abort(msg);
        }
    }

    /** qboot.rom if the qemu package ships it; QEMU then boots the vmlinux by PVH, else through SeaBIOS (slower). */
    public static Optional<Path> qboot() {
        return QBOOT.stream().filter(Files::isRegularFile).findFirst();
    }

    /** Whether this JVM runs as root (TAP ports and some DPDK modes need it). */
    public static boolean root() {
        return "root".equals(System.getProperty("user.name"));
    }
}
