/*
 * jvbus cache-line eviction (dev.jvbus.core.memory.CacheLines): CLFLUSHOPT of lines a peer's core writes next, so
 * that its write finds no copy of ours to take back first (benchmarks/README.md, sessions 22-24).
 *
 * Java cannot issue CLFLUSHOPT, so this is native. And a native instruction must not fault: a flush faults like a load,
 * and on a page of a shared file that a peer truncated under our mapping it raises SIGBUS, which in native code kills
 * the JVM (FFM's own accesses come back as an InternalError instead: MappedMemoryFault). A vhost-user front-end's
 * memory is such a file. So the one CLFLUSHOPT below has an exception table of one entry: our SIGBUS handler sees the
 * fault's PC on that instruction and resumes at the recovery label, and jvbus_lines_evict returns -1. Every other
 * SIGBUS goes on to the handler ours replaced (the JVM's), called as the kernel would have called it, so the JVM's
 * recovery of faulting FFM/Unsafe accesses keeps working. Under the JDK's signal chaining (libjsig preloaded) the JVM
 * keeps its handler and calls ours only for the faults it does not own; both ways were tested in session 23
 * (git show 5c81f31:benchmarks/experiments/SigbusFlush.java).
 *
 * Built by bus-core's build (src/main/c/build.sh) with the machine's gcc; without gcc the library is absent and
 * CacheLines reports eviction as unavailable. x86-64 only: elsewhere jvbus_lines_init reports it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <ucontext.h>

extern char jvbus_flush_begin[], jvbus_flush_end[], jvbus_flush_recover[];

/*
 * int jvbus_lines_evict(const uint64_t *lines, int n): CLFLUSHOPT of each address. 0, or -1 if an address faulted
 * (SIGBUS); the lines after it are not flushed, which costs nothing but speed. No fence: an eviction changes no byte,
 * so nothing need wait for it here (the caller's next locked instruction or fence waits for the flushes anyway).
 */
__asm__(
    ".text\n"
    ".globl jvbus_lines_evict\n"
    ".type jvbus_lines_evict,@function\n"
    "jvbus_lines_evict:\n"
    "  xor %eax, %eax\n"
    "  test %esi, %esi\n"
    "  jle 2f\n"
    "1:\n"
    "  mov (%rdi), %rdx\n"
    ".globl jvbus_flush_begin\n"
    "jvbus_flush_begin:\n"
    "  clflushopt (%rdx)\n"
    ".globl jvbus_flush_end\n"
    "jvbus_flush_end:\n"
    "  add $8, %rdi\n"
    "  dec %esi\n"
    "  jnz 1b\n"
    "2:\n"
    "  ret\n"
    ".globl jvbus_flush_recover\n"
    "jvbus_flush_recover:\n"
    "  mov $-1, %eax\n"
    "  ret\n"
    ".size jvbus_lines_evict, .-jvbus_lines_evict\n");

static struct sigaction replaced;
static long recovered;

static void on_sigbus(int sig, siginfo_t *info, void *ucv) {
    ucontext_t *uc = ucv;
    char *pc = (char *) uc->uc_mcontext.gregs[REG_RIP];
    if (pc >= jvbus_flush_begin && pc < jvbus_flush_end) {   /* our CLFLUSHOPT: resume at the recovery label */
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t) jvbus_flush_recover;
        __atomic_fetch_add(&recovered, 1, __ATOMIC_RELAXED);
        return;
    }
    if (replaced.sa_flags & SA_SIGINFO) replaced.sa_sigaction(sig, info, ucv);
    else if (replaced.sa_handler == SIG_IGN) return;
    else if (replaced.sa_handler == SIG_DFL) { signal(sig, SIG_DFL); raise(sig); }
    else replaced.sa_handler(sig);
}

/* 0: ready; 1: this CPU has no CLFLUSHOPT; 2: the handler could not be installed. Call once (CacheLines' class init). */
int jvbus_lines_init(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 23))) return 1;
    struct sigaction sa;
    if (sigaction(SIGBUS, NULL, &replaced) != 0) return 2;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_mask = replaced.sa_mask;
    sa.sa_flags = replaced.sa_flags | SA_SIGINFO;
    return sigaction(SIGBUS, &sa, NULL) == 0 ? 0 : 2;
}

#else
int jvbus_lines_init(void) { return 3; }
int jvbus_lines_evict(const uint64_t *lines, int n) { (void) lines; (void) n; return -1; }
static long recovered;
#endif

/* Faulting flushes recovered since start (tests, and the bus's own count of truncations met this way). */
long jvbus_lines_recovered(void) { return __atomic_load_n(&recovered, __ATOMIC_RELAXED); }
