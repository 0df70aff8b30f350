package dev.jvbus.connector.shm.client;

import dev.jvbus.core.testing.ChildJvm;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Talking to a {@link NetClientProcess} child through its standard streams: whole lines it printed,
 * {@code key=value} fields in them, and lines sent to it. Shared by the cross-process frame test and
 * the hostile-peers harness, which drive the same child.
 */
public final class ChildLines {
    private ChildLines() {}

    /** The number after {@code key=} in {@code line}. */
    public static long field(String line, String key) {
        Matcher m = Pattern.compile("\\b" + key + "=([0-9.]+)").matcher(line);
        if (!m.find()) throw new AssertionError("no " + key + " in: " + line);
        return (long) Double.parseDouble(m.group(1));
    }

    /** The child's whole line starting with {@code prefix}; fails, with its output, if there is none yet. */
    public static String line(ChildJvm child, String prefix) {
        return completeLine(child.output(), prefix)
                .orElseThrow(() -> new AssertionError("no " + prefix + " line; output:\n" + child.output()));
    }

    /** The first whole line (ended by a newline: the child may be mid-write) that starts with {@code prefix}. */
    public static Optional<String> completeLine(String output, String prefix) {
        int end = output.lastIndexOf('\n');
        if (end < 0) return Optional.empty();
        return Arrays.stream(output.substring(0, end).split("\n")).filter(l -> l.startsWith(prefix)).findFirst();
    }

    /** Waits for {@code child}'s line; gives up at once, with everyone's output, when any of them died. */
    public static void awaitLine(ChildJvm child, String prefix, int seconds, ChildJvm... peers) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (completeLine(child.output(), prefix).isEmpty()) {
            boolean someoneDied = !child.process().isAlive() || Arrays.stream(peers).anyMatch(p -> !p.process().isAlive());
            if (someoneDied || System.nanoTime() > deadline) {
                StringBuilder why = new StringBuilder("child " + child.pid() + " never printed " + prefix + " within "
                        + seconds + " s; its output:\n" + child.output());
                for (ChildJvm p : peers) why.append("\npeer ").append(p.pid()).append(":\n").append(p.output());
                throw new AssertionError(why);
            }
            Thread.sleep(20);
        }
    }

    /** Sends the child one line on its standard input. */
    public static void say(ChildJvm child, String line) {
        try {
            OutputStream in = child.process().getOutputStream();
            in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            in.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot tell child " + child.pid() + " '" + line + "'", e);
        }
    }
}
