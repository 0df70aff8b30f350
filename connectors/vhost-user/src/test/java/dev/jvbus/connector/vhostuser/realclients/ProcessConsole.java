package dev.jvbus.connector.vhostuser.realclients;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An external program whose standard output (and error) is read line by line by a daemon thread,
 * kept in memory and copied to a log file, and whose standard input stays open for commands.
 * The program is started under coreutils {@code timeout}, so it dies by itself even if this JVM
 * dies; {@link #close()} ends it and every process it started.
 */
public final class ProcessConsole implements AutoCloseable {
    private static final Pattern ANSI = Pattern.compile("\u001B\\[[0-9;]*[A-Za-z]");

    private final String name;
    private final Process process;
    private final Path log;
    private final long startNanos = System.nanoTime();
    private final List<String> lines = new ArrayList<>();
    private final List<Long> lineNanos = new ArrayList<>();
    private final OutputStream stdin;
    private boolean eof;

    private ProcessConsole(String name, Process process, Path log) {
        this.name = name;
        this.process = process;
        this.log = log;
        this.stdin = process.getOutputStream();
        Thread reader = Thread.ofPlatform().daemon().name(name + "-console").start(this::pump);
        reader.setUncaughtExceptionHandler((t, e) -> { });
    }

    /**
     * Starts {@code command} under {@code timeout --kill-after=5 <limit>}. The console is copied to
     * {@code logFile} (its directory is created).
     */
    public static ProcessConsole start(String name, List<String> command, Duration limit, Path logFile) {
        List<String> cmd = new ArrayList<>();
        if (Tools.TIMEOUT.present()) {
            cmd.addAll(List.of(Tools.TIMEOUT.find().orElseThrow().toString(), "--kill-after=5", Math.max(1, limit.toSeconds()) + "s"));
        }
        cmd.addAll(command);
        try {
            Files.createDirectories(logFile.toAbsolutePath().getParent());
            Files.writeString(logFile, "$ " + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            ProcessConsole console = new ProcessConsole(name, p, logFile);
            // The Java-side watchdog, for when coreutils timeout is missing or ignored.
            Thread.ofVirtual().start(() -> {
                try {
                    if (!p.waitFor(limit.toMillis() + 10_000, TimeUnit.MILLISECONDS)) console.close();
                } catch (InterruptedException ignored) { }
            });
            return console;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name + ": " + String.join(" ", cmd), e);
        }
    }

    private void pump() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
             Writer w = Files.newBufferedWriter(log, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND)) {
            String line;
            while ((line = r.readLine()) != null) {
                String clean = ANSI.matcher(line).replaceAll("").replace("\r", "");
                w.write(clean);
                w.write('\n');
                w.flush();
                synchronized (this) {
                    lines.add(clean);
                    lineNanos.add(System.nanoTime());
                    notifyAll();
                }
            }
        } catch (IOException ignored) {
            // the process went away
        } finally {
            synchronized (this) {
                eof = true;
                notifyAll();
            }
        }
    }

    public String name() { return name; }

    public Path log() { return log; }

    public long pid() { return process.pid(); }

    public boolean alive() { return process.isAlive(); }

    /** Number of lines read so far: a mark for {@link #awaitLine(int, Pattern, Duration)}. */
    public synchronized int lineCount() { return lines.size(); }

    public synchronized List<String> lines() { return List.copyOf(lines); }

    public synchronized String output() { return String.join("\n", lines); }

    /**
     * When line {@code index} was read, on this JVM's {@link System#nanoTime()} clock: to compare lines of
     * two programs (a guest's console before and after QEMU migrated it).
     */
    public synchronized long nanosAtLine(int index) {
        return lineNanos.get(index);
    }

    /** Milliseconds from the start of the process to when line {@code index} was read. */
    public synchronized long millisUntilLine(int index) {
        return TimeUnit.NANOSECONDS.toMillis(lineNanos.get(index) - startNanos);
    }

    /** The first line at or after {@code from} that matches, or empty once the program ended or time ran out. */
    public Optional<Matcher> findLine(int from, Pattern pattern, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            int i = from;
            while (true) {
                for (; i < lines.size(); i++) {
                    Matcher m = pattern.matcher(lines.get(i));
                    if (m.find()) return Optional.of(m);
                }
                long left = deadline - System.nanoTime();
                if (eof || left <= 0) return Optional.empty();
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }
    }

    /** The index of the first line at or after {@code from} matching {@code pattern}, or -1. */
    public int indexOf(int from, Pattern pattern, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (this) {
            int i = from;
            while (true) {
                for (; i < lines.size(); i++) if (pattern.matcher(lines.get(i)).find()) return i;
                long left = deadline - System.nanoTime();
                if (eof || left <= 0) return -1;
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }
    }

    /**
     * Waits for a line at or after {@code from} matching {@code regex}; fails with the tail of the
     * console (and where the whole log is) if the program ends or time runs out first.
     */
    public Matcher awaitLine(int from, Pattern pattern, Duration timeout) throws InterruptedException {
        return findLine(from, pattern, timeout).orElseThrow(() -> new AssertionError(
                name + ": no line matching /" + pattern + "/ within " + timeout.toMillis() + " ms"
                        + (alive() ? "" : " (process exited " + exitCodeText() + ")") + "; last lines:\n" + tail(25)
                        + "\n(full log: " + log.toAbsolutePath() + ")"));
    }

    public Matcher awaitLine(String regex, Duration timeout) throws InterruptedException {
        return awaitLine(0, Pattern.compile(regex), timeout);
    }

    public synchronized String tail(int n) {
        return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    }

    /** Writes one line to the program's standard input. */
    public void send(String line) {
        try {
            stdin.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            stdin.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": cannot write to its input (exited " + exitCodeText() + ")", e);
        }
    }

    /** Waits for the program to exit; its exit code, or empty on timeout. */
    public Optional<Integer> waitFor(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) return Optional.empty();
        // let the reader drain what is left
        synchronized (this) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
            while (!eof && System.nanoTime() < deadline) TimeUnit.NANOSECONDS.timedWait(this, deadline - System.nanoTime());
        }
        return Optional.of(process.exitValue());
    }

    private String exitCodeText() {
        return process.isAlive() ? "not yet" : String.valueOf(process.exitValue());
    }

    /** Sends SIGTERM to the program (through timeout, which passes it on). */
    public void terminate() {
        process.toHandle().descendants().forEach(ProcessHandle::destroy);
        process.destroy();
    }

    /** Ends the program and everything it started: SIGTERM, then SIGKILL after 3 s. */
    @Override
    public void close() {
        if (!process.isAlive()) return;
        List<ProcessHandle> family = new ArrayList<>(process.toHandle().descendants().toList());
        family.forEach(ProcessHandle::destroy);
        process.destroy();
        try {
            if (!process.waitFor(3, TimeUnit.SECONDS)) {
                family.forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                process.waitFor(3, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            family.forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        family.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }
}
