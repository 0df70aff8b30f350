package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An epoll instance ({@code epoll_create1(EPOLL_CLOEXEC)}) with a preallocated native event array.
 *
 * <p>Each registered fd carries a caller-chosen 64-bit token (a queue index, a session id ...) that
 * {@link #wait(int)} hands back, so the caller never maps fds back to objects. Waiting allocates
 * nothing: results are read with {@link #token(int)} and {@link #events(int)} from the array
 * filled by the last wait, until the next wait.
 *
 * <p>Threads: {@code add}/{@code modify}/{@code remove} may be called from any thread (the kernel
 * serialises them, even against a concurrent wait); {@code wait} and the result accessors belong
 * to one waiting thread. Close only after the waiter has left {@code wait}.
 */
public final class Epoll implements AutoCloseable {
    /** Event bits (epoll_ctl(2)). */
    public static final int IN = 0x001, OUT = 0x004, ERR = 0x008, HUP = 0x010, RDHUP = 0x2000,
            EDGE_TRIGGERED = 1 << 31;

    private final int epfd;
    private final int capacity;
    private final MemorySegment events;   // capacity x struct epoll_event, filled by the kernel
    private final long eventsAddress;
    private final MemorySegment ctlEvent; // one struct epoll_event for epoll_ctl, guarded by itself
    private final AtomicBoolean closed = new AtomicBoolean();
    private int ready;

    private Epoll(int epfd, int capacity) {
        this.epfd = epfd;
        this.capacity = capacity;
        // Auto arena: the arrays live as long as this object, so a late call after close reads
        // our own memory, never freed memory.
        Arena arena = Arena.ofAuto();
        this.events = arena.allocate((long) LibC.EPOLL_EVENT_SIZE * capacity, 8);
        this.eventsAddress = events.address();
        this.ctlEvent = arena.allocate(16, 8);
    }

    /** Creates an epoll instance that reports at most {@code capacity} ready fds per wait. */
    public static Epoll create(int capacity) {
        if (capacity <= 0) throw new IllegalArgumentException("capacity must be positive: " + capacity);
        return new Epoll(Errno.check(LibC.epoll_create1(LibC.EPOLL_CLOEXEC), "epoll_create1"), capacity);
    }

    public void add(int fd, int events, long token) {
        ctl(LibC.EPOLL_CTL_ADD, fd, events, token, "epoll_ctl(ADD, fd " + fd + ")");
    }

    public void add(Pollable p, int events, long token) {
        add(p.fd(), events, token);
    }

    public void modify(int fd, int events, long token) {
        ctl(LibC.EPOLL_CTL_MOD, fd, events, token, "epoll_ctl(MOD, fd " + fd + ")");
    }

    public void remove(int fd) {
        ctl(LibC.EPOLL_CTL_DEL, fd, 0, 0, "epoll_ctl(DEL, fd " + fd + ")");
    }

    public void remove(Pollable p) {
        remove(p.fd());
    }

    private void ctl(int op, int fd, int ev, long token, String what) {
        synchronized (ctlEvent) {
            ctlEvent.set(ValueLayout.JAVA_INT_UNALIGNED, 0, ev);
            ctlEvent.set(ValueLayout.JAVA_LONG_UNALIGNED, LibC.EPOLL_EVENT_DATA_OFFSET, token);
            Errno.check(LibC.epoll_ctl(epfd, op, fd, ctlEvent.address()), what);
        }
    }

    /**
     * Waits for registered fds to become ready: {@code timeoutMillis} 0 polls, negative waits for ever.
     * A signal (EINTR) does not end the wait early; the wait resumes with the time left.
     *
     * @return how many fds are ready (0 when the timeout passed); read them with {@link #token(int)}
     */
    public int wait(int timeoutMillis) {
        long deadline = timeoutMillis > 0 ? System.nanoTime() + timeoutMillis * 1_000_000L : 0;
        int timeout = timeoutMillis;
        while (true) {
            int n = LibC.epoll_wait(epfd, eventsAddress, capacity, timeout);
            if (n >= 0) return ready = n;
            int e = Errno.last();
            if (e != Errno.EINTR) throw Errno.failure("epoll_wait", e);
            if (timeoutMillis > 0) {
                long leftNanos = deadline - System.nanoTime();
                if (leftNanos <= 0) return ready = 0;
                timeout = (int) Math.max(1, (leftNanos + 999_999) / 1_000_000);
            }
        }
    }

    /** The token of the {@code i}-th ready fd of the last wait. */
    public long token(int i) {
        return events.get(ValueLayout.JAVA_LONG_UNALIGNED, offset(i) + LibC.EPOLL_EVENT_DATA_OFFSET);
    }

    /** The event bits ({@link #IN}, {@link #HUP} ...) of the {@code i}-th ready fd of the last wait. */
    public int events(int i) {
        return events.get(ValueLayout.JAVA_INT_UNALIGNED, offset(i));
    }

    private long offset(int i) {
        if (i < 0 || i >= ready) throw new IndexOutOfBoundsException("ready event " + i + " of " + ready);
        return (long) i * LibC.EPOLL_EVENT_SIZE;
    }

    public int capacity() { return capacity; }

    public int fd() { return epfd; }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) LibC.close(epfd);
    }
}
