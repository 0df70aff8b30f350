package dev.jvbus.connector.kvm;

/**
 * The numbers of the hypercall ABI (HYPERCALLS.md): the port, the verbs and the status codes, in one
 * place for the VMM and the tests. The guest program (guest/vbus-guest.c) spells the same numbers.
 */
public final class HypercallAbi {
    private HypercallAbi() {}

    /** The ABI version NEGOTIATE agrees on. */
    public static final int VERSION = 1;

    /** A 32-bit {@code out} to this port is a hypercall; eax carries the verb. */
    public static final int PORT = 0x510;
    /**
     * A 32-bit {@code out} to this port with eax = a doorbell token (from SHMSIGNAL) kicks that queue.
     * KVM_IOEVENTFD matches the token and signals the queue's kick eventfd in the kernel: no exit to the VMM.
     */
    public static final int DOORBELL_PORT = 0x511;
    /** Doorbells per micro-VM: each is an ioeventfd in the kernel and two eventfds here. */
    public static final int MAX_DOORBELLS = 64;

    public static final int NEGOTIATE = 1, ENUMERATE = 2, DEVOPEN = 3, DEVCLOSE = 4, DEVCALL = 5, DEVSHM = 6, SHMSIGNAL = 7;
    /**
     * The guest's halt: rdi = microseconds. The vCPU thread sleeps until a device signals one of the VM's
     * doorbells (their call eventfds), or the time passes. HYPERCALLS.md, "Signals to the guest", says why
     * this and not an interrupt.
     */
    public static final int WAIT = 8;
    /**
     * Registers the guest's bus event ring: rdi = its address, rsi = its length in bytes (HYPERCALLS.md, "Bus
     * events"); length 0 unregisters. Returns the number of entries. Events wake a WAIT.
     */
    public static final int BUSEVENTS = 9;
    /** The longest WAIT; a guest that wants longer waits again. */
    public static final long MAX_WAIT_MICROS = 1_000_000;
    /** Ends the run: rdi = the guest's result code, rsi/rcx = a report block the VMM hands to its caller. */
    public static final int EXIT = 0x100;

    // Status codes: a hypercall returns a value >= 0 in rax on success, one of these on failure.
    public static final long BAD_VERB = -1, NEGOTIATE_FIRST = -2, UNSUPPORTED_VERSION = -3, BAD_BLOCK = -4, NO_SUCH_DEVICE = -5,
            BUSY = -6, NOT_OPEN = -7, DEVICE_ERROR = -8, NOT_YET = -9, INTERNAL = -10, LIMIT = -11, BAD_ARGUMENT = -12;

    /** One ENUMERATE entry: u32 devid, u32 reserved (0), char type[24] (UTF-8, NUL-padded, cut to 23 bytes). */
    public static final int ENUMERATE_ENTRY = 32, TYPE_BYTES = 24;

    /** DEVCALL's parameter block: u64 in_addr, u32 in_len, u32 out_cap, u64 out_addr, u64 reserved. */
    public static final int DEVCALL_BLOCK = 32;

    /** The largest parameter block the VMM reads or writes for one hypercall. */
    public static final long MAX_BLOCK = 64 * 1024;
    /** The largest EXIT report. */
    public static final long MAX_REPORT = 4096;

    /** A status code's name, for reports and test messages. */
    public static String statusName(long status) {
        if (status >= 0) return "OK(" + status + ")";
        return switch ((int) status) {
            case -1 -> "BAD_VERB";
            case -2 -> "NEGOTIATE_FIRST";
            case -3 -> "UNSUPPORTED_VERSION";
            case -4 -> "BAD_BLOCK";
            case -5 -> "NO_SUCH_DEVICE";
            case -6 -> "BUSY";
            case -7 -> "NOT_OPEN";
            case -8 -> "DEVICE_ERROR";
            case -9 -> "NOT_YET";
            case -10 -> "INTERNAL";
            case -11 -> "LIMIT";
            case -12 -> "BAD_ARGUMENT";
            default -> "status " + status;
        };
    }
}
