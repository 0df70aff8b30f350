package dev.jvbus.core.sys;

import java.util.ArrayList;
import java.util.List;

/**
 * The fds that arrived with one message, each an {@link OwnedFd} held here until a handler takes
 * it ({@code get(i).take()}, or by passing {@code get(i)} to {@code EventFd.adopt} /
 * {@code Memfd.adopt}, which take it only if they accept it). {@link #close()} closes every fd not
 * taken, so a handler that refuses a message for any reason (wrong count, wrong kind, no such
 * ring, bad region) leaks nothing:
 * <pre>{@code
 * try (OwnedFds fds = OwnedFds.upTo(2)) {
 *     conn.recvFully(buf, 0, n, fds);
 *     EventFd kick = EventFd.adopt(fds.get(0));   // taken
 * }                                               // fd 1, if not taken, is closed here
 * }</pre>
 *
 * <p>A batch has a limit: the most fds the protocol lets one message carry. A message may gather
 * fds over many recvmsg calls (a peer can send one byte and a few fds per sendmsg); once it brings
 * more than the limit the batch is {@linkplain #overLimit() over its limit}: every fd it held is
 * closed at once and it accepts no more (the receive asks the kernel for none, so the kernel
 * discards them before they ever reach this process's fd table). One thread uses a batch.
 */
public final class OwnedFds implements AutoCloseable {
    private final List<OwnedFd> fds = new ArrayList<>(4);
    private int limit;
    private boolean overLimit;

    private OwnedFds(int limit) {
        if (limit < 0) throw new IllegalArgumentException("negative fd limit: " + limit);
        this.limit = limit;
    }

    /** An empty batch that accepts at most {@code limit} fds. */
    public static OwnedFds upTo(int limit) {
        return new OwnedFds(limit);
    }

    /** How many fds arrived (taken ones included). 0 once the batch went over its limit. */
    public int count() {
        return fds.size();
    }

    /** Fd {@code i}, still owned by this batch (take it to keep it past {@link #close()}). */
    public OwnedFd get(int i) {
        return fds.get(i);
    }

    /** The most fds this batch accepts. */
    public int limit() {
        return limit;
    }

    /**
     * Lowers the limit once the message says what it is (its type or request id fixes how many fds
     * it carries). Fds already here stay (the protocol's decoder refuses a wrong count); only
     * further ones are refused.
     */
    public void lowerLimit(int newLimit) {
        if (newLimit < 0) throw new IllegalArgumentException("negative fd limit: " + newLimit);
        limit = Math.min(limit, newLimit);
    }

    /** How many more fds this batch accepts. */
    public int room() {
        return overLimit ? 0 : Math.max(0, limit - fds.size());
    }

    /** True once the message brought more fds than the limit (all of them are closed then). */
    public boolean overLimit() {
        return overLimit;
    }

    void add(OwnedFd fd) {
        if (overLimit || fds.size() >= limit) {
            fd.close();
            overLimitReached();
            return;
        }
        fds.add(fd);
    }

    /** Moves every fd of {@code other} here (each counted against this batch's limit); {@code other} is left empty. */
    void addAll(OwnedFds other) {
        if (other.overLimit) overLimitReached();
        for (OwnedFd f : other.fds) add(f);
        other.fds.clear();
    }

    /** The message brought more than the limit: close what it brought so far and accept nothing more. */
    void overLimitReached() {
        overLimit = true;
        close();
    }

    /** Closes every fd not taken (each at most once: see {@link OwnedFd#close()}). */
    @Override
    public void close() {
        for (OwnedFd f : fds) f.close();
        if (overLimit) fds.clear();
    }

    @Override
    public String toString() {
        return "OwnedFds" + fds + (overLimit ? "[over limit " + limit + "]" : "");
    }
}
