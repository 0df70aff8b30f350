package dev.jvbus.core.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * A dirty-page bitmap in shared memory (vhost-user's VHOST_F_LOG_ALL log): bit {@code page % 8}
 * of byte {@code page / 8} is set for every 4 KiB guest page the device wrote, so a migrating VMM
 * copies those pages again. The VMM reads and clears the log concurrently, so bits are set with
 * atomic ORs on aligned 64-bit words (little-endian, so word bit {@code page % 64} is that byte's bit).
 *
 * <p>Retiring. A VMM replaces the log while the device runs and, once told the new one is in use,
 * reads the old one a last time and frees it. So whoever replaces a log publishes the new one where
 * writers look ({@link GuestMemory#setDirtyLog}) and then calls {@link #retire}: from then on no mark
 * starts in this log ({@link #mark} answers false and the writer marks in the replacement), and
 * retire returns once every mark already started has landed. Only then may the VMM read it and the
 * mapping go. Writers take no lock: a mark is counted in and out with two atomic adds on this log
 * (only while logging, so migration pays them, nothing else), and the count and the retired flag
 * form a Dekker pair — a writer adds itself then reads the flag, retire sets the flag then reads
 * the count — so at least one of them sees the other: no mark can slip in after retire looked.
 */
public final class DirtyLog {
    public static final int PAGE_SHIFT = 12;
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();
    private static final VarHandle WRITERS;

    static {
        try {
            WRITERS = MethodHandles.lookup().findVarHandle(DirtyLog.class, "writers", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MemorySegment bitmap;
    private final long pages;
    private final LongAdder marked = new LongAdder();   // only touched while logging (migration), so no cost otherwise
    @SuppressWarnings("unused") private volatile int writers;   // marks in progress, via WRITERS
    private volatile boolean retired;

    /** @param bitmap the log, 8-byte aligned and a multiple of 8 bytes (vhost's log chunks are u64) */
    public DirtyLog(MemorySegment bitmap) {
        if (bitmap.byteSize() % 8 != 0 || bitmap.address() % 8 != 0)
            throw new IllegalArgumentException("dirty log must be 8-byte aligned and sized: " + bitmap.byteSize() + " bytes");
        this.bitmap = bitmap;
        this.pages = bitmap.byteSize() * 8;
    }

    /** Pages the log covers, from guest address 0. */
    public long pages() {
        return pages;
    }

    /**
     * Marks every page of {@code [gpa, gpa+len)}; pages beyond the log are not the log's to track.
     *
     * @return false if this log is retired: nothing was marked, the caller marks in the log that replaced it
     */
    public boolean mark(long gpa, long len) {
        if (len <= 0) return true;
        WRITERS.getAndAdd(this, 1);            // in, then look at the flag (see the class comment)
        try {
            if (retired) return false;
            long first = gpa >>> PAGE_SHIFT;
            long last = (gpa + len - 1) >>> PAGE_SHIFT;
            long n = 0;
            for (long p = first; p <= last && p < pages; p++, n++)
                WORD.getAndBitwiseOr(bitmap, (p >>> 6) << 3, 1L << (p & 63));
            if (n > 0) marked.add(n);
            return true;
        } finally {
            WRITERS.getAndAdd(this, -1);       // out: every mark above is in the bitmap before retire can see 0
        }
    }

    /**
     * Stops new marks in this log and waits until the marks in progress have landed. Call it after
     * the replacement is published to the writers. A mark lasts a few atomic ORs, so only a writer
     * thread that lost its CPU makes this wait; the wait spins briefly, then sleeps in short steps.
     *
     * @param bound how long to wait at most
     * @return true once no mark is in progress (the log is final and may be read and unmapped);
     *         false if the bound passed with a writer still inside: the log must stay mapped
     */
    public boolean retire(Duration bound) {
        retired = true;                        // the flag, then look at the count (see the class comment)
        long deadline = System.nanoTime() + bound.toNanos();
        for (int spins = 0; (int) WRITERS.getVolatile(this) != 0; spins++) {
            if (System.nanoTime() - deadline >= 0) return false;
            if (spins < 1000) Thread.onSpinWait();
            else LockSupport.parkNanos(10_000);
        }
        return true;
    }

    /**
     * Page marks made through this log so far (a page written twice counts twice; the VMM clears
     * bits as it copies pages, so this is a count of device writes seen, not of bits set now).
     */
    public long pagesMarked() {
        return marked.sum();
    }

    /** True if the page holding {@code gpa} is marked (for tests and tools). */
    public boolean isDirty(long gpa) {
        long p = gpa >>> PAGE_SHIFT;
        if (p >= pages) return false;
        return (bitmap.get(ValueLayout.JAVA_LONG, (p >>> 6) << 3) & (1L << (p & 63))) != 0;
    }
}
