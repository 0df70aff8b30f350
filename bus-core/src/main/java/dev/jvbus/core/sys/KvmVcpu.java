package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One virtual CPU: its fd, its shared {@code kvm_run} page, and {@link #run()}.
 *
 * <h2>Threads</h2>
 * One thread runs the vCPU ({@link #run()} and the exit accessors); it is the thread the kernel
 * associates with the vCPU. Any other thread may {@link #requestExit()}: that sets
 * {@code kvm_run.immediate_exit} (so a KVM_RUN that has not started yet returns at once) and then
 * sends the run thread {@code SIGPIPE} (so one that is running, perhaps in a guest that never exits,
 * comes back with EINTR). HotSpot handles and ignores SIGPIPE on every thread; see {@link KvmAbi#SIGPIPE}.
 *
 * <h2>Registers</h2>
 * The general registers travel in {@code kvm_run} itself (KVM_CAP_SYNC_REGS): after each exit they
 * are readable with {@link #register}, and {@link #setRegister} writes one back for the next entry,
 * with no ioctl per exit. A hypercall's arguments and result use this.
 */
public final class KvmVcpu implements AutoCloseable {
    /** Exit reasons (KVM_EXIT_*) that the VMM handles or reports. */
    public static final int EXIT_IO = 2, EXIT_HLT = 5, EXIT_MMIO = 6, EXIT_SHUTDOWN = 8, EXIT_FAIL_ENTRY = 9, EXIT_INTR = 10,
            EXIT_INTERNAL_ERROR = 17;
    public static final int IO_IN = 0, IO_OUT = 1;

    private static final VarHandle BYTE = ValueLayout.JAVA_BYTE.varHandle();

    /** The general registers, at their offsets in struct kvm_regs. */
    public enum Register {
        RAX(KvmAbi.REG_RAX), RBX(KvmAbi.REG_RBX), RCX(KvmAbi.REG_RCX), RDX(KvmAbi.REG_RDX), RSI(KvmAbi.REG_RSI),
        RDI(KvmAbi.REG_RDI), RSP(KvmAbi.REG_RSP), RIP(KvmAbi.REG_RIP), RFLAGS(KvmAbi.REG_RFLAGS);

        final int offset;

        Register(int offset) { this.offset = offset; }
    }

    /**
     * Where a 64-bit user-mode (CPL3) guest starts: the page tables at {@code cr3} and the GDT at
     * {@code gdtBase} are already in guest memory (with the U bit at every paging level, and a code
     * segment at {@code codeSelector} and a data segment at {@code dataSelector}, both DPL 3).
     * {@code rdi} and {@code rsi} are the entry point's two arguments (System V calling convention).
     */
    public record UserEntry(long cr3, long gdtBase, int gdtLimit, int codeSelector, int dataSelector, long rip, long rsp,
                            long rdi, long rsi) {
        public UserEntry {
            if ((codeSelector & 3) != 3 || (dataSelector & 3) != 3)
                throw new IllegalArgumentException("CPL3 selectors carry RPL 3: 0x" + Integer.toHexString(codeSelector)
                        + ", 0x" + Integer.toHexString(dataSelector));
        }
    }

    private final OwnedFd fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment run;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** The Linux thread id of the run thread, once it has run; 0 before. */
    private volatile long runThreadId;
    private final int pid = LibC.getpid();

    KvmVcpu(OwnedFd fd, int mmapSize) {
        long addr = LibC.mmap(0, mmapSize, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, fd.number(), 0);
        if (addr == LibC.MAP_FAILED) {
            arena.close();
            throw Errno.failure("mmap(kvm_run, " + mmapSize + " bytes)", Errno.last());
        }
        this.run = MemorySegment.ofAddress(addr).reinterpret(mmapSize, arena, unused -> LibC.munmap(addr, mmapSize));
        this.fd = fd;
        run.set(ValueLayout.JAVA_LONG, KvmAbi.RUN_VALID_REGS, KvmAbi.SYNC_X86_REGS);
    }

    /**
     * Puts the vCPU in 64-bit long mode at CPL3 (KVM_SET_SREGS, KVM_SET_REGS): paging with PAE and
     * long mode on, user code and data segments loaded directly (their hidden parts, so no far jump
     * and no privileged code runs in the guest). On kvm_pvm hosts CPL0 guest code is emulated one
     * instruction at a time while CPL3 code runs natively; that is why the guest starts in user mode.
     */
    public void enterUserMode(UserEntry entry) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(KvmAbi.SREGS_SIZE, 8);
            Errno.check(LibC.ioctl(fd.number(), KvmAbi.GET_SREGS, s.address()), "KVM_GET_SREGS");
            segment(s, KvmAbi.SREG_CS, entry.codeSelector(), 0xB, true);   // execute/read, accessed; 64-bit (L)
            for (int seg : new int[] {KvmAbi.SREG_DS, KvmAbi.SREG_ES, KvmAbi.SREG_FS, KvmAbi.SREG_GS, KvmAbi.SREG_SS})
                segment(s, seg, entry.dataSelector(), 0x3, false);         // read/write, accessed
            s.set(ValueLayout.JAVA_LONG, KvmAbi.SREG_GDT + KvmAbi.DTABLE_BASE, entry.gdtBase());
            s.set(ValueLayout.JAVA_SHORT, KvmAbi.SREG_GDT + KvmAbi.DTABLE_LIMIT, (short) entry.gdtLimit());
            s.set(ValueLayout.JAVA_LONG, KvmAbi.SREG_CR0,
                    KvmAbi.CR0_PE | KvmAbi.CR0_MP | KvmAbi.CR0_ET | KvmAbi.CR0_NE | KvmAbi.CR0_WP | KvmAbi.CR0_PG);
            s.set(ValueLayout.JAVA_LONG, KvmAbi.SREG_CR3, entry.cr3());
            s.set(ValueLayout.JAVA_LONG, KvmAbi.SREG_CR4, KvmAbi.CR4_PAE);
            s.set(ValueLayout.JAVA_LONG, KvmAbi.SREG_EFER, KvmAbi.EFER_LME | KvmAbi.EFER_LMA);
            Errno.check(LibC.ioctl(fd.number(), KvmAbi.SET_SREGS, s.address()), "KVM_SET_SREGS");

            MemorySegment r = a.allocate(KvmAbi.REGS_SIZE, 8);   // zeroed: every other register starts at 0
            r.set(ValueLayout.JAVA_LONG, KvmAbi.REG_RIP, entry.rip());
            r.set(ValueLayout.JAVA_LONG, KvmAbi.REG_RSP, entry.rsp());
            r.set(ValueLayout.JAVA_LONG, KvmAbi.REG_RDI, entry.rdi());
            r.set(ValueLayout.JAVA_LONG, KvmAbi.REG_RSI, entry.rsi());
            // Bit 1 is reserved and set; interrupts off; IOPL 3: on VMX/SVM hardware the CPU checks I/O
            // permission (CPL <= IOPL, else the TSS bitmap) before it exits on in/out, so a CPL3 guest needs
            // IOPL 3 for its port hypercalls to reach the VMM rather than #GP. (kvm_pvm exits either way.)
            r.set(ValueLayout.JAVA_LONG, KvmAbi.REG_RFLAGS, 0x2L | KvmAbi.RFLAGS_IOPL3);
            Errno.check(LibC.ioctl(fd.number(), KvmAbi.SET_REGS, r.address()), "KVM_SET_REGS");
        }
    }

    private static void segment(MemorySegment sregs, int at, int selector, int type, boolean code) {
        sregs.set(ValueLayout.JAVA_LONG, at + KvmAbi.SEG_BASE, 0L);
        sregs.set(ValueLayout.JAVA_INT, at + KvmAbi.SEG_LIMIT, 0xFFFFFFFF);
        sregs.set(ValueLayout.JAVA_SHORT, at + KvmAbi.SEG_SELECTOR, (short) selector);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_TYPE, (byte) type);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_PRESENT, (byte) 1);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_DPL, (byte) 3);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_DB, (byte) (code ? 0 : 1));
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_S, (byte) 1);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_L, (byte) (code ? 1 : 0));
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_G, (byte) 1);
        sregs.set(ValueLayout.JAVA_BYTE, at + KvmAbi.SEG_UNUSABLE, (byte) 0);
    }

    /**
     * Runs the guest until it exits to user space (KVM_RUN) and returns the exit reason; {@link #EXIT_INTR}
     * when a signal ({@link #requestExit()}) brought it back. Only the run thread calls this.
     */
    public int run() {
        if (runThreadId == 0) runThreadId = LibC.syscall(KvmAbi.SYS_GETTID, 0, 0, 0, 0, 0, 0);
        if (LibC.ioctl(fd.number(), KvmAbi.RUN, 0) < 0) {
            int errno = Errno.last();
            if (errno == Errno.EINTR) return EXIT_INTR;   // a signal, or immediate_exit set before entry
            throw Errno.failure("KVM_RUN", errno);
        }
        return run.get(ValueLayout.JAVA_INT, KvmAbi.RUN_EXIT_REASON);
    }

    /**
     * Asks the run thread to leave KVM_RUN and not enter it again; callable from any thread, any number
     * of times. The signal can land just before the run thread enters KVM_RUN and be consumed by nothing;
     * immediate_exit, set first, covers that window. Callers repeat it until the run thread has stopped.
     */
    public void requestExit() {
        if (closed.get()) return;
        BYTE.setVolatile(run, (long) KvmAbi.RUN_IMMEDIATE_EXIT, (byte) 1);
        long tid = runThreadId;
        if (tid != 0) LibC.syscall(KvmAbi.SYS_TGKILL, pid, tid, KvmAbi.SIGPIPE, 0, 0, 0);
    }

    /** True once {@link #requestExit()} was called. */
    public boolean exitRequested() {
        return (byte) BYTE.getVolatile(run, (long) KvmAbi.RUN_IMMEDIATE_EXIT) != 0;
    }

    // ---- the last exit (run thread only) ----

    public int ioDirection() { return run.get(ValueLayout.JAVA_BYTE, KvmAbi.RUN_IO_DIRECTION); }

    public int ioSize() { return run.get(ValueLayout.JAVA_BYTE, KvmAbi.RUN_IO_SIZE); }

    public int ioPort() { return Short.toUnsignedInt(run.get(ValueLayout.JAVA_SHORT, KvmAbi.RUN_IO_PORT)); }

    public int ioCount() { return run.get(ValueLayout.JAVA_INT, KvmAbi.RUN_IO_COUNT); }

    /** The first datum of a port access ({@link #ioSize()} bytes, zero-extended); for IO_IN it is what the guest will read. */
    public long ioData() {
        long at = ioDataOffset();
        return switch (ioSize()) {
            case 1 -> Byte.toUnsignedLong(run.get(ValueLayout.JAVA_BYTE, at));
            case 2 -> Short.toUnsignedLong(run.get(ValueLayout.JAVA_SHORT, at));
            default -> Integer.toUnsignedLong(run.get(ValueLayout.JAVA_INT, at));
        };
    }

    /** Sets what a port read (IO_IN) returns to the guest. */
    public void setIoData(long value) {
        long at = ioDataOffset();
        switch (ioSize()) {
            case 1 -> run.set(ValueLayout.JAVA_BYTE, at, (byte) value);
            case 2 -> run.set(ValueLayout.JAVA_SHORT, at, (short) value);
            default -> run.set(ValueLayout.JAVA_INT, at, (int) value);
        }
    }

    private long ioDataOffset() {
        long at = run.get(ValueLayout.JAVA_LONG, KvmAbi.RUN_IO_DATA_OFFSET);
        // The kernel puts the data inside the mapping; check anyway rather than read outside it.
        if (at < 0 || at > run.byteSize() - 4) throw new IllegalStateException("kvm_run io.data_offset " + at + " is outside kvm_run");
        return at;
    }

    /** KVM_EXIT_INTERNAL_ERROR's suberror, or KVM_EXIT_FAIL_ENTRY's hardware reason (same offset). */
    public long exitDetail() {
        return Integer.toUnsignedLong(run.get(ValueLayout.JAVA_INT, KvmAbi.RUN_INTERNAL_SUBERROR));
    }

    /** A general register as of the last exit (synced through kvm_run). */
    public long register(Register r) {
        return run.get(ValueLayout.JAVA_LONG, KvmAbi.RUN_SYNC_REGS + r.offset);
    }

    /** Changes a general register for the next entry (the whole synced set is written back then). */
    public void setRegister(Register r, long value) {
        run.set(ValueLayout.JAVA_LONG, KvmAbi.RUN_SYNC_REGS + r.offset, value);
        run.set(ValueLayout.JAVA_LONG, KvmAbi.RUN_DIRTY_REGS, KvmAbi.SYNC_X86_REGS);
    }

    /** A readable name for an exit reason, for reports. */
    public static String exitName(int reason) {
        return switch (reason) {
            case EXIT_IO -> "KVM_EXIT_IO";
            case EXIT_HLT -> "KVM_EXIT_HLT";
            case EXIT_MMIO -> "KVM_EXIT_MMIO";
            case EXIT_SHUTDOWN -> "KVM_EXIT_SHUTDOWN (triple fault)";
            case EXIT_FAIL_ENTRY -> "KVM_EXIT_FAIL_ENTRY";
            case EXIT_INTR -> "KVM_EXIT_INTR";
            case EXIT_INTERNAL_ERROR -> "KVM_EXIT_INTERNAL_ERROR";
            default -> "KVM exit " + reason;
        };
    }

    /** Unmaps kvm_run and closes the vCPU fd, once; the run thread must have finished. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        try {
            arena.close();
        } finally {
            fd.close();
        }
    }
}
