package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.sys.Fds;
import dev.jvbus.core.sys.FdStat;
import java.util.Arrays;

/**
 * The fds that arrived with one frame, owned here until a handler takes them. Closing closes every
 * fd not taken, so a handler that refuses a frame (wrong count, wrong kind, bad region) leaks
 * nothing: the session closes this before it sends the reply.
 */
public final class PassedFds implements AutoCloseable {
    private static final int TAKEN = -1;
    public static final PassedFds NONE = new PassedFds(new int[0]);

    private final int[] fds;

    public PassedFds(int[] fds) {
        this.fds = fds.clone();
    }

    public int count() { return fds.length; }

    /** Looks at fd {@code i} without taking it. */
    public int peek(int i) {
        int fd = fds[i];
        if (fd == TAKEN) throw new IllegalStateException("fd " + i + " was already taken");
        return fd;
    }

    public FdStat stat(int i) { return FdStat.of(peek(i)); }

    public boolean isEventFd(int i) { return FdStat.isEventFd(peek(i)); }

    /** Takes ownership of fd {@code i}: the caller closes it from now on. */
    public int take(int i) {
        int fd = peek(i);
        fds[i] = TAKEN;
        return fd;
    }

    @Override
    public void close() {
        for (int i = 0; i < fds.length; i++) {
            if (fds[i] != TAKEN) {
                Fds.close(fds[i]);
                fds[i] = TAKEN;
            }
        }
    }

    @Override
    public String toString() { return "PassedFds" + Arrays.toString(fds); }
}
