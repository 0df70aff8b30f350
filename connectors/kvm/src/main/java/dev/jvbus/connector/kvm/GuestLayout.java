package dev.jvbus.connector.kvm;

import dev.jvbus.core.sys.KvmVcpu;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Where things live in a micro-VM's guest-physical memory (identity-mapped, so guest-virtual is the
 * same), and the few tables the VMM writes before the first instruction:
 * <pre>
 *   0x001000  GDT: null, null, null, user code (0x1b: DPL 3, 64-bit), user data (0x23: DPL 3)
 *   0x002000  PML4 -> 0x003000 PDPT -> 0x004000 PD of 2 MiB pages (P, RW, U, PS) over all of memory
 *   0x005000  boot parameters: 64-bit words the VMM's caller writes before the run (a mode's arguments
 *             that do not fit in two registers); the guest reads them once
 *   0x010000  the guest program (text, data, bss) up to 0x100000
 *   0x100000  the stack, growing down from 0x200000
 *   0x200000  free for the guest's rings and buffers, to the end of memory
 * </pre>
 * The U bit is set at every paging level and the segments are DPL 3 because the guest runs at CPL3:
 * on kvm_pvm only user-mode code runs natively (ISSUE 17, "What /dev/kvm does"). 32-bit paging is
 * refused there, and long mode with 2 MiB pages needs neither CPUID nor a TSS address.
 */
public final class GuestLayout {
    private GuestLayout() {}

    static final long GDT = 0x1000, PML4 = 0x2000, PDPT = 0x3000, PD = 0x4000;
    /** The boot parameter page, and how many 64-bit words it holds. */
    public static final long PARAMS = 0x5000;
    public static final int MAX_PARAMS = 512;
    public static final long PROGRAM = 0x10000, PROGRAM_END = 0x100000, STACK_TOP = 0x200000, FREE = 0x200000;
    static final int CODE_SELECTOR = 0x1B, DATA_SELECTOR = 0x23;
    static final long PAGE_2M = 2L << 20;
    /** One page directory maps 512 pages of 2 MiB. */
    public static final long MAX_MEMORY = 512 * PAGE_2M;
    public static final long MIN_MEMORY = 2 * PAGE_2M;

    private static final long USER_CODE_64 = 0x00AFFB000000FFFFL;   // P, DPL 3, S, type 0xB (exec/read, accessed), L, G
    private static final long USER_DATA = 0x00CFF3000000FFFFL;      // P, DPL 3, S, type 0x3 (read/write, accessed), D/B, G
    private static final long PRESENT = 1, WRITABLE = 2, USER = 4, LARGE = 0x80;

    /** Checks a memory size: whole 2 MiB pages, between {@link #MIN_MEMORY} and {@link #MAX_MEMORY}. */
    public static void checkMemorySize(long bytes) {
        if (bytes < MIN_MEMORY || bytes > MAX_MEMORY || bytes % PAGE_2M != 0)
            throw new IllegalArgumentException("micro-VM memory must be a multiple of 2 MiB between " + (MIN_MEMORY >> 20) + " and "
                    + (MAX_MEMORY >> 20) + " MiB, not " + bytes + " bytes");
    }

    /** Writes the GDT, the page tables and the program into fresh (zeroed) guest memory. */
    static void prepare(MemorySegment memory, GuestProgram program) {
        checkMemorySize(memory.byteSize());
        if (program.size() > PROGRAM_END - PROGRAM)
            throw new IllegalArgumentException("guest program '" + program.name() + "' has " + program.size()
                    + " bytes; at most " + (PROGRAM_END - PROGRAM) + " fit at 0x" + Long.toHexString(PROGRAM));
        memory.set(ValueLayout.JAVA_LONG, GDT + (CODE_SELECTOR >> 3) * 8L, USER_CODE_64);
        memory.set(ValueLayout.JAVA_LONG, GDT + (DATA_SELECTOR >> 3) * 8L, USER_DATA);
        memory.set(ValueLayout.JAVA_LONG, PML4, PDPT | PRESENT | WRITABLE | USER);
        memory.set(ValueLayout.JAVA_LONG, PDPT, PD | PRESENT | WRITABLE | USER);
        for (long page = 0; page < memory.byteSize() / PAGE_2M; page++)
            memory.set(ValueLayout.JAVA_LONG, PD + page * 8, page * PAGE_2M | PRESENT | WRITABLE | USER | LARGE);
        MemorySegment.copy(program.bytes(), 0, memory, ValueLayout.JAVA_BYTE, PROGRAM, program.size());
    }

    /** The vCPU's start: CPL3 at the program's first byte, {@code rdi} and {@code rsi} its two arguments. */
    static KvmVcpu.UserEntry entry(long arg0, long arg1) {
        return new KvmVcpu.UserEntry(PML4, GDT, 5 * 8 - 1, CODE_SELECTOR, DATA_SELECTOR, PROGRAM, STACK_TOP, arg0, arg1);
    }
}
