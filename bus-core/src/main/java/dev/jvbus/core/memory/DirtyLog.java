package dev.jvbus.core.memory;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.LongAdder;

/**
 * A dirty-page bitmap in shared memory (vhost-user's VHOST_F_LOG_ALL log): bit {@code page % 8}
 * of byte {@code page / 8} is set for every 4 KiB guest page the device wrote, so a migrating VMM
 * copies those pages again. The VMM reads and clears the log concurrently, so bits are set with
 * atomic ORs on aligned 64-bit words (little-endian, so word bit {@code page % 64} is that byte's bit).
 */
public final class DirtyLog {
    public static final int PAGE_SHIFT = 12;
    private static final VarHandle WORD = ValueLayout.JAVA_LONG.varHandle();

    private final MemorySegment bitmap;
    private final long pages;
    private final LongAdder marked = new LongAdder();   // only touched while logging (migration), so no cost otherwise

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

    /** Marks every page of {@code [gpa, gpa+len)}; pages beyond the log are not the log's to track. */
    public void mark(long gpa, long len) {
        if (len <= 0) return;
        long first = gpa >>> PAGE_SHIFT;
        long last = (gpa + len - 1) >>> PAGE_SHIFT;
        long n = 0;
        for (long p = first; p <= last && p < pages; p++, n++)
            WORD.getAndBitwiseOr(bitmap, (p >>> 6) << 3, 1L << (p & 63));
        if (n > 0) marked.add(n);
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
