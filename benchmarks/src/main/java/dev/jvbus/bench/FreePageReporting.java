package dev.jvbus.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The guest kernel's free page reporting, and a wait for it to go quiet before a benchmark's turn.
 *
 * <p>These machines are VMs whose virtio-balloon offers free page reporting ({@code VIRTIO_BALLOON_F_REPORTING}, the
 * {@code reporting_vq} line of {@code /proc/interrupts}). When a process exits, its memory goes back to the kernel's
 * free lists, and 2 s later ({@code PAGE_REPORTING_DELAY} in {@code mm/page_reporting.c}) a kernel worker hands the
 * large free blocks to the host, which takes them back. A testpmd frees 512 MB when it exits (its {@code -m 512}), an
 * OVS or a QEMU more.
 *
 * <p>A bench that starts its next turn right after the last one's processes exit measures that turn in the middle of
 * the reporting. bench-vhost did: DPDK's turn starts its back-end first, which took the 2 s, so its window came after
 * the reporting; ours, whose back-end is already running, started sooner and at times met it in rounds where it
 * followed DPDK's (session 25: 3-4 reports inside such windows of ours and none inside DPDK's; those rounds read
 * 0.85-0.98 but for one, the rounds between them about 1.00; benchmarks/README). So each turn now starts
 * {@link #settle settled}: at least the delay after the last exit, and once no report has come for a while. Each
 * bench prints the reports that still came inside its windows.
 *
 * <p>Where the machine has no reporting, nothing is waited for.
 */
final class FreePageReporting {
    /** The kernel reports 2 s after the pages are freed; a margin for the worker's first batch to arrive. */
    static final long DEFAULT_AFTER_EXIT_MS = 2_500;
    /** No report for this long: the worker has handed back what it had. */
    static final long QUIET_MS = 500;
    /** A settle never waits longer than this (a machine that reports all the time is reported, not waited out). */
    static final long MAX_WAIT_MS = 15_000;

    private static final Path INTERRUPTS = Path.of("/proc/interrupts");

    private final boolean present;
    private final long afterExitMs;
    private long exitedAt = Long.MIN_VALUE;   // System.nanoTime() of the last exit; MIN_VALUE: none yet

    private FreePageReporting(boolean present, long afterExitMs) {
        this.present = present;
        this.afterExitMs = afterExitMs;
    }

    /**
     * This machine's reporting, settled as a bench's {@code --settle S} says (S seconds after an exit, default
     * {@link #DEFAULT_AFTER_EXIT_MS}; 0 turns the settling off, and the counts are still read).
     */
    static FreePageReporting find(BenchOptions opts) {
        long afterExitMs = (long) (opts.number("--settle", DEFAULT_AFTER_EXIT_MS / 1000.0) * 1000);
        return new FreePageReporting(count() >= 0, afterExitMs);
    }

    /** For the bench's header line. */
    String describe() {
        if (!present) return "no free page reporting on this machine";
        if (afterExitMs <= 0) return "free page reporting: turns not settled (--settle 0)";
        return String.format(Locale.ROOT, "turns settled: %.1f s after the last exit, then %d ms without a free page report",
                afterExitMs / 1000.0, QUIET_MS);
    }

    /** Reports the kernel has made so far (interrupts of its {@code reporting_vq}); 0 where it has none. */
    long reports() {
        return present ? Math.max(0, count()) : 0;
    }

    /** The last turn's processes have exited: their memory is being freed now. */
    void exited() {
        exitedAt = System.nanoTime();
    }

    /** Waits until the memory freed by the last exit has been reported (see the class comment). */
    void settle() throws InterruptedException {
        if (!present || afterExitMs <= 0 || exitedAt == Long.MIN_VALUE) return;
        long start = System.nanoTime();
        long due = exitedAt + afterExitMs * 1_000_000;
        long now = System.nanoTime();
        if (due > now) Thread.sleep((due - now) / 1_000_000 + 1);
        long last = reports(), quietSince = System.nanoTime();
        while (System.nanoTime() - quietSince < QUIET_MS * 1_000_000 && System.nanoTime() - start < MAX_WAIT_MS * 1_000_000) {
            Thread.sleep(20);
            long r = reports();
            if (r != last) {
                last = r;
                quietSince = System.nanoTime();
            }
        }
    }

    /** The sum over CPUs of this machine's {@code reporting_vq} interrupts, or -1 if there is no such line. */
    private static long count() {
        try {
            return count(Files.readAllLines(INTERRUPTS));
        } catch (IOException e) {
            return -1;
        }
    }

    /**
     * The sum over CPUs of the {@code reporting_vq} interrupts in {@code lines} (as {@code /proc/interrupts} has them:
     * the IRQ, one count per CPU, then the chip and the name), or -1 if there is no such line.
     */
    static long count(List<String> lines) {
        long sum = -1;
        for (String line : lines) {
            if (!line.contains("reporting_vq")) continue;
            String[] f = line.trim().split("\\s+");
            sum = Math.max(sum, 0);
            for (int i = 1; i < f.length && f[i].chars().allMatch(Character::isDigit); i++) sum += Long.parseLong(f[i]);
        }
        return sum;
    }
}
