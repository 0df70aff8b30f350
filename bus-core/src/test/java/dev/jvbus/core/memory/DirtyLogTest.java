package dev.jvbus.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DirtyLogTest {

    @Test
    void marksEveryPageOfARangeAndNothingElse() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bits = arena.allocate(16, 8);   // 128 pages
            DirtyLog log = new DirtyLog(bits);
            log.mark(0x1fff, 2);           // straddles pages 1 and 2
            log.mark(0x40000, 1);          // page 64: second word
            log.mark(0x10_0000_0000L, 8);  // beyond the log: not ours to track
            log.mark(0x5000, 0);           // empty
            assertThat(log.isDirty(0x1000)).isTrue();
            assertThat(log.isDirty(0x2000)).isTrue();
            assertThat(log.isDirty(0x3000)).isFalse();
            assertThat(log.isDirty(0x0)).isFalse();
            assertThat(log.isDirty(0x5000)).isFalse();
            // the vhost-user layout: bit page%8 of byte page/8
            assertThat(bits.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 0b110);
            assertThat(bits.get(ValueLayout.JAVA_BYTE, 8)).isEqualTo((byte) 0b1);
            assertThat(log.pagesMarked()).as("pages 1, 2 and 64; nothing beyond the log or for an empty range").isEqualTo(3);
            assertThatThrownBy(() -> new DirtyLog(arena.allocate(12, 8))).hasMessageContaining("8-byte aligned and sized");
        }
    }

    @Test
    void concurrentMarksAreNeverLost() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment bits = arena.allocate(8, 8);    // 64 pages, one word: every mark contends
            DirtyLog log = new DirtyLog(bits);
            Thread even = Thread.ofPlatform().start(() -> { for (int r = 0; r < 2000; r++) for (int p = 0; p < 64; p += 2) log.mark((long) p << 12, 1); });
            Thread odd = Thread.ofPlatform().start(() -> { for (int r = 0; r < 2000; r++) for (int p = 1; p < 64; p += 2) log.mark((long) p << 12, 1); });
            even.join();
            odd.join();
            assertThat(bits.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(-1L);
        }
    }

    @Test
    void deviceWritesThroughGuestMemoryAndTheUsedRingAreLogged() throws Exception {
        try (Memfd mem = Memfd.create("guest", 1 << 20); Arena arena = Arena.ofConfined()) {
            GuestMemory gm = GuestMemory.of(new MemoryRegion(0, 1 << 20, mem.segment()));
            DirtyLog log = new DirtyLog(arena.allocate(32, 8));   // 256 pages = the whole 1 MiB
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, false, Notifier.NONE);
            SplitVirtqueue dev = SplitVirtqueue.create(0, 16, 0x1000, 0x2000, 0x3000, gm, true, false, Notifier.NONE);
            BufferList l = new BufferList(1);
            l.writable(0x8000, 64);
            drv.add(l);

            gm.setDirtyLog(log);
            DescriptorChain c = dev.newChain();
            assertThat(dev.pop(c)).isTrue();
            gm.copyToGuest(MemorySegment.ofArray(new byte[64]), 0, 0x8000, 64);
            dev.pushUsed(c.head(), 64);
            dev.publishUsed();
            assertThat(log.isDirty(0x8000)).as("rx data page").isTrue();
            assertThat(log.isDirty(0x3000)).as("used ring page").isTrue();
            assertThat(log.isDirty(0x1000)).as("the descriptor table is the driver's, not written by the device").isFalse();

            gm.setDirtyLog(null);
            gm.copyToGuest(MemorySegment.ofArray(new byte[8]), 0, 0x9000, 8);
            assertThat(log.isDirty(0x9000)).as("no logging once stopped").isFalse();
        }
    }

    // ---- replacing a log under a running writer (issue 9, point 6) ----

    static final int SWITCHES = 4_000;
    static final int LOG_PAGES = 8192;                  // a log of 1 KiB; the writer cycles through its pages
    static final int MARK_PAGES = 64;                   // pages per mark: a mark takes a while, as an rx frame's does
    static final int AHEAD = 32;                         // marks the writer may make per log (bounds the check)
    private volatile long started;                       // marks the writer has begun
    private volatile long done;                          // marks the writer has finished
    private volatile long allowed = AHEAD;               // marks the writer may have finished before it waits
    private volatile boolean stop;
    private static final VarHandle DONE;

    static {
        try {
            DONE = MethodHandles.lookup().findVarHandle(DirtyLogTest.class, "done", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * A VMM reads a replaced log once, right after the device said it switched, and frees it. So a
     * mark the writer started in the old log must land before {@link DirtyLog#retire} returns, and
     * none may start there after. The writer's n-th mark covers the 64 pages from n * 64 (modulo
     * the log), as fast as it can; the switcher publishes log i+1, retires log i and reads it at
     * once, 4,000 times, each after the writer made two marks in the current log and, if it can,
     * while it is in the middle of the next (it may make 32, then waits for the next switch). Mark n started after log i-1's retire returned (n > the count finished
     * then) lands in log i or later; mark n finished before log i+1 was published (n < the count
     * finished then) lands in log i or earlier: so each of its pages shows in one of the logs
     * between, as each read when retired.
     */
    @Test
    void aMarkInProgressWhenTheLogIsReplacedLandsBeforeTheRetiredLogIsRead() throws Exception {
        GuestMemory gm = GuestMemory.empty();          // marking needs no region, only the log
        long logBytes = LOG_PAGES / 8;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment logs = arena.allocate(logBytes * (SWITCHES + 1), 8);
            long[][] read = new long[SWITCHES + 1][];
            long[] startedAfter = new long[SWITCHES + 1];   // marks finished when the previous log was retired
            long[] finishedBefore = new long[SWITCHES + 1]; // marks finished when the next log was published
            DirtyLog log = new DirtyLog(logs.asSlice(0, logBytes));
            gm.setDirtyLog(log);
            Thread writer = Thread.ofPlatform().name("marks").start(() -> {
                for (long n = 0; !stop; n++) {
                    for (int spins = 0; n >= allowed && !stop; spins++) {   // stay hot for the next switch, yield if it is late
                        if (spins < 10_000) Thread.onSpinWait();
                        else Thread.yield();
                    }
                    started = n + 1;
                    gm.markDirty((n * MARK_PAGES % LOG_PAGES) << DirtyLog.PAGE_SHIFT, (long) MARK_PAGES << DirtyLog.PAGE_SHIFT);
                    DONE.setVolatile(this, n + 1);
                }
            });
            for (int i = 0; i < SWITCHES; i++) {
                // Two marks made in this log, and the writer in the middle of the next one if it can: the hard case.
                for (int spins = 0; done <= startedAfter[i] + 1 || started == done && done < allowed; spins++) {
                    if (spins < 10_000) Thread.onSpinWait();
                    else Thread.yield();
                }
                finishedBefore[i] = done;
                DirtyLog next = new DirtyLog(logs.asSlice(logBytes * (i + 1), logBytes));
                gm.setDirtyLog(next);
                assertThat(log.retire(Duration.ofSeconds(30))).as("marks in progress landed").isTrue();
                read[i] = logs.asSlice(logBytes * i, logBytes).toArray(ValueLayout.JAVA_LONG);   // the VMM's last read of the old log
                startedAfter[i + 1] = done;
                allowed = startedAfter[i + 1] + AHEAD;
                log = next;
            }
            stop = true;
            writer.join();
            long total = done;
            finishedBefore[SWITCHES] = Long.MAX_VALUE;
            assertThat(log.retire(Duration.ofSeconds(30))).isTrue();
            read[SWITCHES] = logs.asSlice(logBytes * SWITCHES, logBytes).toArray(ValueLayout.JAVA_LONG);

            List<String> lost = new ArrayList<>();
            int lo = 0, hi = 0;
            for (long n = 0; n < total && lost.size() < 10; n++) {
                while (lo < SWITCHES && startedAfter[lo + 1] + 1 <= n) lo++;   // the last log retired before mark n began
                while (finishedBefore[hi] <= n) hi++;                          // the first log published after mark n ended
                for (long page = n * MARK_PAGES % LOG_PAGES, end = page + MARK_PAGES; page < end; page++) {
                    boolean found = false;
                    for (int k = lo; k <= hi && !found; k++) found = (read[k][(int) (page >>> 6)] & (1L << (page & 63))) != 0;
                    if (!found) lost.add("mark " + n + ": page " + page + " in none of logs " + lo + ".." + hi);
                }
            }
            assertThat(lost).as("marks that landed in no log read after them").isEmpty();
        }
    }
}
