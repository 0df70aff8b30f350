package dev.jvbus.core.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real second JVM for cross-process tests: runs {@code mainClass} with this JVM's class path
 * and native-access flags. Output goes to a file so a chatty child never blocks on a full pipe;
 * {@link #close()} kills it if it is still running, so a failed test leaves no process behind.
 */
public final class ChildJvm implements AutoCloseable {
    private final Process process;
    private final Path log;

    private ChildJvm(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    public static ChildJvm start(Class<?> mainClass, String... args) {
        return start(List.of(), mainClass, args);
    }

    public static ChildJvm start(List<String> jvmArgs, Class<?> mainClass, String... args) {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("-Xss1m");
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass.getName());
        cmd.addAll(List.of(args));
        try {
            Path log = Files.createTempFile("jvbus-child-", ".log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            return new ChildJvm(p, log);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start child JVM for " + mainClass.getName(), e);
        }
    }

    public long pid() { return process.pid(); }

    public Process process() { return process; }

    /** Waits for the child to exit and returns its exit code; fails with the child's output on timeout. */
    public int waitFor(long timeout, TimeUnit unit) throws InterruptedException {
        if (!process.waitFor(timeout, unit)) {
            process.destroyForcibly();
            throw new AssertionError("child JVM did not finish within " + timeout + " " + unit + "; output:\n" + output());
        }
        return process.exitValue();
    }

    /** Kills the child at once (SIGKILL), as a crashing client would die. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /** Everything the child printed so far. */
    public String output() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "<cannot read child output: " + e + ">";
        }
    }

    @Override
    public void close() {
        process.destroyForcibly();
        try {
            process.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(log);
        } catch (IOException ignored) {
            // a leftover temp file is harmless
        }
    }
}
