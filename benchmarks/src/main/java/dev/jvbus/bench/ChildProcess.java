package dev.jvbus.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A child JVM running {@link RingBench} (same java, same class path, same JVM flags as the parent),
 * driven by lines on its stdin. Its stdout lines starting with '@' are replies; any other stdout
 * line is copied to our stderr. The child exits when its stdin closes, so it never outlives us.
 */
final class ChildProcess implements AutoCloseable {
    private final String label;
    private final Process process;
    private final PrintWriter in;
    private final BlockingQueue<String> replies = new LinkedBlockingQueue<>();

    private ChildProcess(String label, Process process) {
        this.label = label;
        this.process = process;
        this.in = new PrintWriter(process.getOutputStream(), true, StandardCharsets.UTF_8);
        Thread t = Thread.ofPlatform().daemon().name("child-out-" + label).start(() -> pump());
    }

    static ChildProcess start(String label, List<String> args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(RingBench.class.getName());
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        return new ChildProcess(label, p);
    }

    private void pump() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("@")) replies.add(line.substring(1));
                else System.err.println("[" + label + "] " + line);
            }
        } catch (IOException ignored) {
            // the child died; expect() reports it
        } finally {
            replies.add("EOF");
        }
    }

    void send(String line) { in.println(line); }

    /** Next reply, which must start with {@code word}; fails on timeout, child death or another reply. */
    String[] expect(String word, long timeoutMillis) throws IOException {
        String line;
        try {
            line = replies.poll(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
        if (line == null) throw new IOException(label + ": no " + word + " within " + timeoutMillis + " ms");
        String[] parts = line.split(" ");
        if (!parts[0].equals(word)) throw new IOException(label + ": expected " + word + ", got: " + line);
        return parts;
    }

    ProcessHandle handle() { return process.toHandle(); }

    @Override
    public void close() {
        in.close(); // EOF on stdin: a healthy child exits by itself
        try {
            if (!process.waitFor(2, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
