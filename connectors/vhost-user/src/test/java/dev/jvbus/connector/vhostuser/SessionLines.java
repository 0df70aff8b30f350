package dev.jvbus.connector.vhostuser;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** What {@link VhostUserSession} logs at INFO and above while recorded: the lines an operator reads. */
final class SessionLines implements AutoCloseable {
    private final Logger logger = Logger.getLogger(VhostUserSession.class.getName());
    private final List<String> lines = new ArrayList<>();
    private final Handler handler = new Handler() {
        @Override public void publish(LogRecord r) {
            if (r.getLevel().intValue() >= Level.INFO.intValue())
                synchronized (lines) { lines.add(r.getMessage()); }
        }
        @Override public void flush() { }
        @Override public void close() { }
    };

    private SessionLines() { }

    static SessionLines record() {
        SessionLines s = new SessionLines();
        s.logger.addHandler(s.handler);
        return s;
    }

    /** The lines recorded so far that contain {@code text}, each without its "vhost-user " prefix. */
    List<String> matching(String text) {
        synchronized (lines) {
            return lines.stream().filter(l -> l.contains(text)).map(l -> l.startsWith("vhost-user ") ? l.substring(11) : l).toList();
        }
    }

    @Override public void close() {
        logger.removeHandler(handler);
    }
}
