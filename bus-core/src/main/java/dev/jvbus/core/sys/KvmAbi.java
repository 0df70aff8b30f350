package dev.jvbus.core.sys;

/**
 * The numbers and layouts of the Linux KVM API ({@code include/uapi/linux/kvm.h}, x86-64) that
 * {@link Kvm}, {@link KvmVm} and {@link KvmVcpu} use. Taken from the kernel headers with
 * {@code offsetof}/{@code sizeof}; one place, so a wrong offset has one place to be wrong in.
 */
final class KvmAbi {
    private KvmAbi() {}

    /** The only stable API version there has ever been (KVM_GET_API_VERSION). */
    static final int API_VERSION = 12;

    // ioctls on /dev/kvm
    static final long GET_API_VERSION = 0xAE00L, CREATE_VM = 0xAE01L, CHECK_EXTENSION = 0xAE03L, GET_VCPU_MMAP_SIZE = 0xAE04L;
    // ioctls on a VM
    static final long CREATE_VCPU = 0xAE41L, SET_USER_MEMORY_REGION = 0x4020AE46L, IOEVENTFD = 0x4040AE79L;
    // ioctls on a vCPU
    static final long RUN = 0xAE80L, GET_REGS = 0x8090AE81L, SET_REGS = 0x4090AE82L, GET_SREGS = 0x8138AE83L, SET_SREGS = 0x4138AE84L;

    static final int CAP_USER_MEMORY = 3, CAP_IOEVENTFD = 36, CAP_SYNC_REGS = 74, CAP_IMMEDIATE_EXIT = 136;

    /** struct kvm_userspace_memory_region { u32 slot, flags; u64 guest_phys_addr, memory_size, userspace_addr; } */
    static final int MEMORY_REGION_SIZE = 32;

    // struct kvm_run (the vCPU's shared page)
    static final int RUN_IMMEDIATE_EXIT = 0x1, RUN_EXIT_REASON = 0x8;
    static final int RUN_IO_DIRECTION = 0x20, RUN_IO_SIZE = 0x21, RUN_IO_PORT = 0x22, RUN_IO_COUNT = 0x24, RUN_IO_DATA_OFFSET = 0x28;
    static final int RUN_INTERNAL_SUBERROR = 0x20, RUN_FAIL_ENTRY_REASON = 0x20;
    static final int RUN_VALID_REGS = 0x120, RUN_DIRTY_REGS = 0x128, RUN_SYNC_REGS = 0x130;
    static final long SYNC_X86_REGS = 0x1;

    // struct kvm_regs: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags, u64 each
    static final int REGS_SIZE = 0x90;
    static final int REG_RAX = 0x00, REG_RBX = 0x08, REG_RCX = 0x10, REG_RDX = 0x18, REG_RSI = 0x20, REG_RDI = 0x28, REG_RSP = 0x30;
    static final int REG_RIP = 0x80, REG_RFLAGS = 0x88;

    // struct kvm_sregs: cs ds es fs gs ss tr ldt (struct kvm_segment, 24 bytes each), gdt idt (struct kvm_dtable, 16), cr0 cr2 cr3 cr4 cr8 efer apic_base
    static final int SREGS_SIZE = 0x138;
    static final int SREG_CS = 0x00, SREG_DS = 0x18, SREG_ES = 0x30, SREG_FS = 0x48, SREG_GS = 0x60, SREG_SS = 0x78, SREG_TR = 0x90;
    static final int SREG_GDT = 0xC0, SREG_CR0 = 0xE0, SREG_CR3 = 0xF0, SREG_CR4 = 0xF8, SREG_EFER = 0x108;
    // struct kvm_segment { u64 base; u32 limit; u16 selector; u8 type, present, dpl, db, s, l, g, avl, unusable, padding; }
    static final int SEG_BASE = 0, SEG_LIMIT = 8, SEG_SELECTOR = 12, SEG_TYPE = 14, SEG_PRESENT = 15, SEG_DPL = 16, SEG_DB = 17,
            SEG_S = 18, SEG_L = 19, SEG_G = 20, SEG_UNUSABLE = 22;
    // struct kvm_dtable { u64 base; u16 limit; u16 padding[3]; }
    static final int DTABLE_BASE = 0, DTABLE_LIMIT = 8;

    // struct kvm_ioeventfd { u64 datamatch, addr; u32 len; s32 fd; u32 flags; u8 pad[36]; }
    static final int IOEVENTFD_SIZE = 64, IOEVENTFD_DATAMATCH = 0, IOEVENTFD_ADDR = 8, IOEVENTFD_LEN = 16, IOEVENTFD_FD = 20, IOEVENTFD_FLAGS = 24;
    static final int IOEVENTFD_FLAG_DATAMATCH = 1, IOEVENTFD_FLAG_PIO = 2, IOEVENTFD_FLAG_DEASSIGN = 4;

    // x86-64 control bits for long mode (Intel SDM vol. 3, 2.5 and 4.5)
    static final long CR0_PE = 1L, CR0_MP = 1L << 1, CR0_ET = 1L << 4, CR0_NE = 1L << 5, CR0_WP = 1L << 16, CR0_PG = 1L << 31;
    static final long CR4_PAE = 1L << 5;
    static final long EFER_LME = 1L << 8, EFER_LMA = 1L << 10;
    static final long RFLAGS_IOPL3 = 3L << 12;

    // Linux x86-64 syscall numbers: no glibc wrapper for tgkill before 2.30, so all go through syscall(2).
    static final long SYS_GETTID = 186, SYS_TGKILL = 234;
    /**
     * The signal that kicks a vCPU thread out of KVM_RUN. It needs a handler (an ignored signal is
     * discarded, never pending, and would not interrupt KVM_RUN), and installing one from Java is not
     * possible safely; HotSpot already handles SIGPIPE on every thread and ignores it there
     * (signals_posix.cpp), so the only effect is the EINTR we want.
     */
    static final int SIGPIPE = 13;
}
