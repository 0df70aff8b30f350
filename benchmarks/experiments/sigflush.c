/*
 * EXPERIMENT (benchmarks/experiments, not built by Maven): a CLFLUSHOPT that a peer's truncation cannot turn into a
 * dead JVM. flush_lines() evicts lines; if one faults (SIGBUS: the page is past the end of a file a peer shrank),
 * our SIGBUS handler sees the fault's PC inside flush_lines' loop and resumes at its recovery label, which returns -1.
 * Every other SIGBUS goes to the handler we replaced (the JVM's), called as the kernel would have called it, so the
 * JVM's own recovery of faulting Unsafe/FFM accesses (InternalError, MappedMemoryFault) keeps working.
 * gcc -O2 -shared -fPIC -o /tmp/sigflush/libsigflush.so benchmarks/experiments/sigflush.c; run SigbusFlush.java beside it.
 * The handler's counters are plain longs: two threads faulting at once may lose a count (seen: 199972 and 199998 of 200000).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

extern char flush_begin[], flush_end[], flush_recover[];

/* int flush_lines(const uint64_t *addrs, int n): 0, or -1 if a line faulted (the rest not flushed). */
__asm__(
    ".text\n"
    ".globl flush_lines\n"
    ".type flush_lines,@function\n"
    "flush_lines:\n"
    "  xor %eax, %eax\n"
    "  test %esi, %esi\n"
    "  jle 2f\n"
    "1:\n"
    "  mov (%rdi), %rdx\n"
    ".globl flush_begin\n"
    "flush_begin:\n"
    "  clflushopt (%rdx)\n"
    ".globl flush_end\n"
    "flush_end:\n"
    "  add $8, %rdi\n"
    "  dec %esi\n"
    "  jnz 1b\n"
    "  sfence\n"
    "2:\n"
    "  ret\n"
    ".globl flush_recover\n"
    "flush_recover:\n"
    "  sfence\n"
    "  mov $-1, %eax\n"
    "  ret\n"
    ".size flush_lines, .-flush_lines\n");

static struct sigaction replaced;
static volatile long recovered, forwarded;

static void on_sigbus(int sig, siginfo_t *info, void *ucv) {
    ucontext_t *uc = ucv;
    char *pc = (char *) uc->uc_mcontext.gregs[REG_RIP];
    if (pc >= flush_begin && pc < flush_end) {        /* the one CLFLUSHOPT: resume at the recovery label */
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t) flush_recover;
        recovered++;
        return;
    }
    forwarded++;
    if (replaced.sa_flags & SA_SIGINFO) replaced.sa_sigaction(sig, info, ucv);
    else if (replaced.sa_handler == SIG_IGN) return;
    else if (replaced.sa_handler == SIG_DFL) { signal(sig, SIG_DFL); raise(sig); }
    else replaced.sa_handler(sig);
}

/* Installs the handler once, with the replaced handler's mask and flags. */
int install(void) {
    struct sigaction sa;
    if (sigaction(SIGBUS, NULL, &replaced) != 0) return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_mask = replaced.sa_mask;
    sa.sa_flags = replaced.sa_flags | SA_SIGINFO;
    return sigaction(SIGBUS, &sa, NULL);
}

long recovered_count(void) { return recovered; }
long forwarded_count(void) { return forwarded; }
