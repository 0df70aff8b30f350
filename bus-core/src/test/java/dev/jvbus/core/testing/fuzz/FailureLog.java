package dev.jvbus.core.testing.fuzz;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * What a session logs when something escaped its handlers (a WARNING with an exception): the session fuzz
 * targets' "it never failed on its own account" property, read from the session's own logger.
 */
public final class FailureLog {
    private final List<LogRecord> failures = new ArrayList<>();

    private FailureLog() {}

    /** Starts recording the failures {@code owner}'s logger reports. */
    public static FailureLog of(Class<?> owner) {
        FailureLog log = new FailureLog();
        Logger.getLogger(owner.getName()).addHandler(new Handler() {
            @Override public void publish(LogRecord r) {
                if (r.getLevel().intValue() >= Level.WARNING.intValue() && r.getThrown() != null)
                    synchronized (log.failures) { log.failures.add(r); }
            }
            @Override public void flush() { }
            @Override public void close() { }
        });
        return log;
    }

    /** Throws the first failure recorded since the last call (and forgets them all), naming {@code what} failed. */
    public void assertNone(String what) {
        synchronized (failures) {
            if (failures.isEmpty()) return;
            LogRecord r = failures.getFirst();
            failures.clear();
            throw new AssertionError(what + " failed: " + r.getMessage(), r.getThrown());
        }
    }
}
