package dev.jvbus.core.sys;

/**
 * A memory barrier on every running thread of this process, paid by the one thread that asks for it:
 * {@code membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)} (Linux 4.14+). It lets a Dekker pair put its full fence
 * on the rare side only. The frequent side (a delivery entering a device's rx gate, once per frame) keeps its
 * store and its load in program order and pays no fence; the rare side (the control plane closing that gate)
 * stores, calls {@link #acrossThreads()}, then loads. Each running thread then executes a full barrier at
 * some point of its program: its store before that point is visible to the rare side's load, or its load after
 * that point sees the rare side's store. HotSpot does the same for its own thread-state handshakes with
 * {@code -XX:+UseSystemMemoryBarrier}, as do liburcu and Folly's asymmetric fences.
 *
 * <p>The process registers its intent once (first use); where the call is missing (an old kernel, seccomp, an
 * architecture whose syscall number we do not carry, or {@code -Djvbus.membarrier.off=true}) {@link #available()}
 * is false and callers keep their symmetric fence.
 */
public final class ProcessBarrier {
    private static final int CMD_QUERY = 0, CMD_PRIVATE_EXPEDITED = 1 << 3, CMD_REGISTER_PRIVATE_EXPEDITED = 1 << 4;
    private static final long SYS_MEMBARRIER = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> 324;
        case "aarch64", "riscv64" -> 283;   // the generic table
        default -> -1;
    };
    private static final boolean AVAILABLE = register();

    private ProcessBarrier() {}

    private static boolean register() {
        if (SYS_MEMBARRIER < 0 || Boolean.getBoolean("jvbus.membarrier.off")) return false;
        try {
            long supported = LibC.syscall(SYS_MEMBARRIER, CMD_QUERY, 0, 0, 0, 0, 0);
            if (supported < 0 || (supported & CMD_PRIVATE_EXPEDITED) == 0) return false;
            return LibC.syscall(SYS_MEMBARRIER, CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0, 0, 0, 0) == 0;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** True if {@link #acrossThreads()} works here (registered for this process). */
    public static boolean available() {
        return AVAILABLE;
    }

    /**
     * Returns once every thread of this process that was running has executed a full memory barrier (an IPI to
     * each CPU running one of them; about 4 us here). Only for the rare side of a pair.
     *
     * @throws IllegalStateException if {@link #available()} is false
     */
    public static void acrossThreads() {
        if (!AVAILABLE) throw new IllegalStateException("membarrier(PRIVATE_EXPEDITED) is not available here");
        Errno.check(LibC.syscall(SYS_MEMBARRIER, CMD_PRIVATE_EXPEDITED, 0, 0, 0, 0, 0), "membarrier");
    }
}
