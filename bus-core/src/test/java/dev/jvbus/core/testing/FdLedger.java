package dev.jvbus.core.testing;

import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.Memfd;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Watches this process's fd table around a request, to show that the bus closed every fd a refused
 * request carried (nothing new stays open) and closed nothing else: a sentinel memfd, opened first,
 * must still be open and still be the same file afterwards (a double close hits the next fd to be
 * opened, which in a busy bus is somebody else's).
 *
 * <p>It compares fd tables, not counts: another thread of the test JVM may close fds of its own
 * meanwhile (an earlier test's session ending) without hiding a leak. New entries are waited for
 * to go away (the bus may close them just after it replied), with a generous deadline.
 */
public final class FdLedger implements AutoCloseable {
    private static final Duration DEADLINE = Duration.ofSeconds(20);
    /** What the directory fd of a listing of /proc/self/fd points to: left out of every snapshot. */
    private static final String LISTING = "/proc/" + ProcessHandle.current().pid() + "/fd";

    private final Memfd sentinel = Memfd.create("jvbus-fd-sentinel", 4096);
    private final long sentinelInode = FdStat.of(sentinel.fd()).inode();

    /** The fds open now, with what each refers to. */
    public Map<Integer, String> snapshot() {
        Map<Integer, String> fds = new TreeMap<>();
        try (Stream<Path> entries = Files.list(Path.of("/proc/self/fd"))) {
            entries.forEach(p -> {
                try {
                    String target = Files.readSymbolicLink(p).toString();
                    if (!target.equals(LISTING)) fds.put(Integer.parseInt(p.getFileName().toString()), target);
                } catch (IOException gone) {
                    // closed while we listed (among them the directory fd of this very listing)
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return fds;
    }

    /** Runs {@code request} and checks nothing leaked and nothing unrelated was closed. Returns its result. */
    public <T> T around(String what, Request<T> request) throws Exception {
        Map<Integer, String> before = snapshot();
        T result = request.run();
        assertNoNewFds(what, before);
        assertSentinelIntact(what);
        return result;
    }

    /** Waits until every fd open now was open (to the same file) in {@code before}. */
    public void assertNoNewFds(String what, Map<Integer, String> before) throws InterruptedException {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        Map<Integer, String> extra;
        while (!(extra = newSince(before)).isEmpty()) {
            if (System.nanoTime() > deadline) throw new AssertionError(what + ": fds left open by the bus: " + extra);
            Thread.sleep(5);
        }
    }

    private Map<Integer, String> newSince(Map<Integer, String> before) {
        Map<Integer, String> extra = new HashMap<>();
        for (Map.Entry<Integer, String> e : snapshot().entrySet()) {
            if (e.getValue().equals(before.get(e.getKey()))) continue;
            if (e.getValue().endsWith(".jar")) continue;   // the class loader opening a jar for the first time
            extra.put(e.getKey(), e.getValue());
        }
        return extra;
    }

    /** The sentinel fd is still open and still the same file. */
    public void assertSentinelIntact(String what) {
        long inode;
        try {
            inode = FdStat.of(sentinel.fd()).inode();
        } catch (RuntimeException closed) {
            throw new AssertionError(what + ": the sentinel fd " + sentinel.fd() + " was closed by someone else", closed);
        }
        if (inode != sentinelInode)
            throw new AssertionError(what + ": the sentinel fd " + sentinel.fd() + " was closed and its number reused");
    }

    /** A request to a peer under test. */
    @FunctionalInterface
    public interface Request<T> {
        T run() throws Exception;
    }

    @Override
    public void close() {
        sentinel.close();
    }
}
