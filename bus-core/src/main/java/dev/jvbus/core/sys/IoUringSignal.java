package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Signals one eventfd from inside the kernel, so that whoever shares the eventfd can never make
 * the signalling thread wait.
 *
 * <h2>Why this works whatever the peer does</h2>
 * write(2) on an eventfd blocks when the counter would pass 2^64-2, unless O_NONBLOCK is set; and
 * O_NONBLOCK belongs to the open file description, which the peer that passed us the eventfd
 * shares and may clear with fcntl at any moment. An eventfd cannot be reopened to get a private
 * description, and pwritev2(RWF_NOWAIT) is refused (EOPNOTSUPP: eventfd has no write_iter). The
 * kernel's own eventfd_signal() never blocks, though: it adds 1 under a spinlock and saturates at
 * 2^64-1. io_uring calls it for us: this ring has the eventfd registered (IORING_REGISTER_EVENTFD),
 * and each completion it posts signals that eventfd. A signal is therefore one IORING_OP_NOP: bump
 * the SQ tail, io_uring_enter; the NOP completes inline and its CQE signals the eventfd before the
 * call returns. Nothing on that path reads the eventfd's file flags, and the ring's fd, memory and
 * lock are ours alone; the ring holds its own reference to the eventfd, so it never goes through
 * the eventfd's fd number either.
 *
 * <h2>Cost and threads</h2>
 * One syscall per signal, no allocation, no lock of ours. Every SQE slot holds the same NOP,
 * written at setup and never again, so a signaller only reserves a slot: an atomic increment of
 * the SQ tail (which the kernel reads with an acquire load). Any number of threads may signal at
 * once. Each enter submits one pending entry if there is any (to_submit 1), so n increments are
 * consumed by n enters, and the entry a thread added is consumed by its own enter or by another
 * enter that read the tail after that increment; either way the eventfd is signalled after
 * whatever the thread published before signalling, which is all a doorbell promises. If more
 * threads than slots sit between increment and enter, the slots are identical, so nothing is
 * lost either. One entry per enter also keeps the count exact: the kernel signals the eventfd once
 * per batch of completions it posts (io_eventfd_flush_signal), not once per completion, and here
 * every batch is one NOP. Only an overflow flush (below) posts several at once and counts them as one.
 *
 * <p>CQEs are never read, only released: each signaller moves the CQ head up to the tail with a CAS
 * that never moves it back. Should the CQ fill anyway (more threads than CQ entries stalled between
 * their enter and their release), the kernel keeps the completion on its overflow list
 * (IORING_FEAT_NODROP, required here) and signals the eventfd only when that reaches the ring; so
 * the signaller that sees IORING_SQ_CQ_OVERFLOW releases the CQ and flushes the list with a
 * non-waiting enter (GETEVENTS, min_complete 0), and its signal is not held back.
 *
 * <p>io_uring_enter holds the ring's own mutex while it submits: only for submitting NOPs and
 * signalling, neither of which sleeps on anything a peer controls.
 *
 * <p>{@link #close()} only when no {@link #signal()} runs ({@link EventFd} counts its users for
 * that): the mappings go with it.
 */
final class IoUringSignal {
    private static final Logger LOG = Logger.getLogger(IoUringSignal.class.getName());

    /** SQ entries; the kernel makes the CQ twice as large. Two pages of memory per ring at this size. */
    static final int DEFAULT_ENTRIES = 32;
    private static final int RETRIES = 100;

    // include/uapi/linux/io_uring.h
    private static final int PARAMS_SIZE = 120;
    private static final int P_SQ_ENTRIES = 0, P_CQ_ENTRIES = 4, P_FEATURES = 20;
    private static final int P_SQ_OFF = 40, P_CQ_OFF = 80; // struct io_sqring_offsets, io_cqring_offsets
    private static final int SQ_OFF_TAIL = 4, SQ_OFF_FLAGS = 16, SQ_OFF_ARRAY = 24;
    private static final int CQ_OFF_HEAD = 0, CQ_OFF_TAIL = 4, CQ_OFF_CQES = 20;
    private static final int FEAT_SINGLE_MMAP = 1, FEAT_NODROP = 1 << 1;
    private static final int SQ_CQ_OVERFLOW = 1 << 1;
    private static final int REGISTER_EVENTFD = 4;
    private static final int ENTER_GETEVENTS = 1;
    private static final long OFF_SQ_RING = 0, OFF_SQES = 0x10000000L;
    private static final int SQE_SIZE = 64, CQE_SIZE = 16;
    private static final byte OP_NOP = 0;

    private static final VarHandle U32 = ValueLayout.JAVA_INT.varHandle(); // coordinates (MemorySegment, long offset)

    /** Why io_uring cannot be used in this process, once known; null while it can (or nobody tried). */
    private static volatile String unavailable;

    private final int ringFd;
    private final MemorySegment rings; // SQ ring and CQ ring, one mapping (IORING_FEAT_SINGLE_MMAP)
    private final MemorySegment sqes;
    private final long sqTail, sqFlags, cqHead, cqTail;
    /** Overflow flushes so far (plain, racy: for tests and curiosity). */
    long overflowFlushes;

    private IoUringSignal(int ringFd, MemorySegment rings, MemorySegment sqes,
                          long sqTail, long sqFlags, long cqHead, long cqTail) {
        this.ringFd = ringFd;
        this.rings = rings;
        this.sqes = sqes;
        this.sqTail = sqTail;
        this.sqFlags = sqFlags;
        this.cqHead = cqHead;
        this.cqTail = cqTail;
    }

    /**
     * A ring that signals {@code eventFd}, or null if io_uring cannot be had: then the caller uses
     * its fallback. Logs why, once per process when io_uring is unavailable altogether (ENOSYS,
     * EPERM from the io_uring_disabled sysctl or seccomp, missing features), and each time a ring
     * cannot be made for want of fds or memory.
     */
    static IoUringSignal openOrNull(int eventFd) {
        if (unavailable != null) return null;
        try {
            return open(eventFd, DEFAULT_ENTRIES);
        } catch (Errno.SysException e) {
            int errno = e.errno();
            if (errno == Errno.EMFILE || errno == Errno.ENFILE || errno == Errno.ENOMEM) {
                LOG.log(Level.WARNING, "no io_uring for eventfd {0} ({1}); it is signalled by poll and write, "
                        + "which a peer that clears O_NONBLOCK can block", new Object[] {eventFd, e.getMessage()});
                return null;
            }
            synchronized (IoUringSignal.class) {
                if (unavailable == null) {
                    unavailable = e.getMessage();
                    LOG.log(Level.WARNING, "io_uring is not available ({0}): peers'' eventfds are signalled by poll "
                            + "and write, which a peer that clears O_NONBLOCK on its eventfd can block", e.getMessage());
                }
            }
            return null;
        }
    }

    /** Sets up a ring of {@code entries} SQ entries (a power of two) signalling {@code eventFd}. */
    static IoUringSignal open(int eventFd, int entries) {
        int ringFd;
        int sqEntries, cqEntries, features;
        long sqOff, cqOff;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = arena.allocate(PARAMS_SIZE, 8); // zeroed: no flags, kernel defaults
            ringFd = (int) Errno.check(LibC.syscall(LibC.SYS_IO_URING_SETUP, entries, params.address(), 0, 0, 0, 0), "io_uring_setup");
            sqEntries = params.get(ValueLayout.JAVA_INT, P_SQ_ENTRIES);
            cqEntries = params.get(ValueLayout.JAVA_INT, P_CQ_ENTRIES);
            features = params.get(ValueLayout.JAVA_INT, P_FEATURES);
            sqOff = P_SQ_OFF;
            cqOff = P_CQ_OFF;
            int sqTail = params.get(ValueLayout.JAVA_INT, sqOff + SQ_OFF_TAIL);
            int sqFlags = params.get(ValueLayout.JAVA_INT, sqOff + SQ_OFF_FLAGS);
            int sqArray = params.get(ValueLayout.JAVA_INT, sqOff + SQ_OFF_ARRAY);
            int cqHead = params.get(ValueLayout.JAVA_INT, cqOff + CQ_OFF_HEAD);
            int cqTail = params.get(ValueLayout.JAVA_INT, cqOff + CQ_OFF_TAIL);
            int cqes = params.get(ValueLayout.JAVA_INT, cqOff + CQ_OFF_CQES);
            MemorySegment rings = null, sqes = null;
            try {
                if ((features & (FEAT_SINGLE_MMAP | FEAT_NODROP)) != (FEAT_SINGLE_MMAP | FEAT_NODROP)) {
                    throw Errno.failure("io_uring without IORING_FEAT_SINGLE_MMAP and IORING_FEAT_NODROP (Linux < 5.5)", Errno.EINVAL);
                }
                long ringsLength = Math.max(sqArray + 4L * sqEntries, cqes + (long) CQE_SIZE * cqEntries);
                rings = map(ringFd, ringsLength, OFF_SQ_RING, "mmap(io_uring rings)");
                sqes = map(ringFd, (long) SQE_SIZE * sqEntries, OFF_SQES, "mmap(io_uring sqes)");
                // Every slot is the same NOP (user_data 0), for good: signallers never write an SQE.
                sqes.fill((byte) 0);
                for (int i = 0; i < sqEntries; i++) {
                    sqes.set(ValueLayout.JAVA_BYTE, (long) i * SQE_SIZE, OP_NOP);
                    rings.set(ValueLayout.JAVA_INT, sqArray + 4L * i, i);
                }
                MemorySegment fdArg = arena.allocate(ValueLayout.JAVA_INT);
                fdArg.set(ValueLayout.JAVA_INT, 0, eventFd);
                Errno.check(LibC.syscall(LibC.SYS_IO_URING_REGISTER, ringFd, REGISTER_EVENTFD, fdArg.address(), 1, 0, 0),
                        "io_uring_register(EVENTFD, fd " + eventFd + ")");
                VarHandle.fullFence(); // the slots are written before any thread can see this object
                return new IoUringSignal(ringFd, rings, sqes, sqTail, sqFlags, cqHead, cqTail);
            } catch (RuntimeException e) {
                if (sqes != null) LibC.munmap(sqes.address(), sqes.byteSize());
                if (rings != null) LibC.munmap(rings.address(), rings.byteSize());
                LibC.close(ringFd);
                throw e;
            }
        }
    }

    private static MemorySegment map(int fd, long length, long offset, String what) {
        long address = LibC.mmap(0, length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, fd, offset);
        if (address == LibC.MAP_FAILED) throw Errno.failure(what, Errno.last());
        // Unmapped explicitly in close(), which runs when no signaller is left (see EventFd).
        return MemorySegment.ofAddress(address).reinterpret(length);
    }

    /** Adds 1 to the eventfd, in the kernel. Never waits; any number of threads. */
    void signal() {
        U32.getAndAdd(rings, sqTail, 1); // reserve a slot; a full fence, so the kernel's acquire of the tail sees it
        enter(1, 0, "io_uring_enter");
        releaseCompletions();
        if (((int) U32.getAcquire(rings, sqFlags) & SQ_CQ_OVERFLOW) != 0) flushOverflow();
    }

    private void enter(int toSubmit, int flags, String what) {
        for (int attempt = 0; ; attempt++) {
            long rc = LibC.syscall(LibC.SYS_IO_URING_ENTER, ringFd, toSubmit, 0, flags, 0, 0);
            if (rc >= 0) return;
            int e = Errno.last();
            // EINTR: a signal came first. EAGAIN: no memory for a request just now. EBUSY: a kernel
            // before 5.19 refusing to submit while completions overflow. Our entry is still queued.
            if ((e == Errno.EINTR || e == Errno.EAGAIN || e == Errno.EBUSY) && attempt < RETRIES) {
                releaseCompletions();
                if (e == Errno.EBUSY && flags == 0) flushOverflow();
                Thread.onSpinWait();
                continue;
            }
            throw Errno.failure(what, e);
        }
    }

    /** Moves the CQ head to the tail; never back (the head is read first, and the tail only grows). */
    private void releaseCompletions() {
        while (true) {
            int head = (int) U32.getVolatile(rings, cqHead);
            int tail = (int) U32.getAcquire(rings, cqTail);
            if (head == tail || U32.compareAndSet(rings, cqHead, head, tail)) return;
        }
    }

    private void flushOverflow() {
        overflowFlushes++;
        for (int i = 0; i < RETRIES && ((int) U32.getAcquire(rings, sqFlags) & SQ_CQ_OVERFLOW) != 0; i++) {
            releaseCompletions();
            enter(0, ENTER_GETEVENTS, "io_uring_enter(GETEVENTS)"); // min_complete 0: flushes, never waits
        }
        releaseCompletions();
    }

    int fd() { return ringFd; }

    /** Unmaps the rings and closes the ring (which drops its reference to the eventfd). Once, with no signaller left. */
    void close() {
        LibC.munmap(sqes.address(), sqes.byteSize());
        LibC.munmap(rings.address(), rings.byteSize());
        LibC.close(ringFd);
    }
}
