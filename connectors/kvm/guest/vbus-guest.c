/*
 * A vbus guest driver for the jvbus KVM connector: freestanding x86-64 code that runs at CPL3 in
 * the micro-VM and talks to the bus only through the hypercall port (connectors/kvm/HYPERCALLS.md).
 *
 * The VMM enters _start(mode) with rdi = mode, rsp at the top of the stack, and nothing else:
 * no C library, no interrupts, no privileged instruction (CPL3 code runs natively on kvm_pvm;
 * CPL0 code would be emulated). Every run ends with an EXIT hypercall carrying a report of 64-bit
 * words that the host test reads back.
 *
 * Build: guest/build.sh (flat binary linked at 0x10000 by guest/vbus-guest.ld).
 */
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;
typedef long s64;

/* HYPERCALLS.md: the port, the verbs, the status codes. */
#define HC_PORT       0x510
#define HC_NEGOTIATE  1
#define HC_ENUMERATE  2
#define HC_DEVOPEN    3
#define HC_DEVCLOSE   4
#define HC_DEVCALL    5
#define HC_DEVSHM     6
#define HC_SHMSIGNAL  7
#define DOORBELL_PORT 0x511
#define HC_EXIT       0x100
#define ABI_VERSION   1

#define MODE_ENUMERATE   0   /* negotiate, enumerate, report the devids */
#define MODE_BAD_CALLS   1   /* bad hypercalls, one after the other, then report their status codes */
#define MODE_SPIN        2   /* loop forever without an exit: the VMM's timeout must stop it */
#define MODE_UD2         3   /* an undefined instruction: #UD with no IDT, a triple fault */
#define MODE_PING        4   /* n NEGOTIATE hypercalls back to back: the cost of a round trip */
#define MODE_OPEN        5   /* open devid arg (twice: the second must be BUSY) and exit holding it */
#define MODE_DOORBELL    6   /* arg = devid | kicks << 32: share memory, get queue 1's doorbell, kick it */
#define MODE_DEVCALL     7   /* arg = devid of a test-echo device: features, status, echo, bad calls */

/* Bus calls (connectors/shm/PROTOCOL.md): the same funcs and payloads on every connector. */
#define BC_GET_FEATURES 0x01
#define BC_SET_FEATURES 0x02
#define BC_SET_STATUS   0x04
#define MODEL_BASE      0x100

struct dev_entry {            /* what ENUMERATE writes, 32 bytes each */
    u32 devid;
    u32 reserved;
    char type[24];
};

static struct dev_entry devices[64];
static s64 report[2 + 2 * 64 + 16];

void *memset(void *dst, int c, u64 n) {
    u8 *d = dst;
    while (n--) *d++ = (u8)c;
    return dst;
}

void *memcpy(void *dst, const void *src, u64 n) {
    u8 *d = dst;
    const u8 *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

/* verb in eax (the value the out writes), arguments in rdi, rsi, rcx; the result comes back in rax. */
static inline s64 hypercall(u32 verb, u64 a0, u64 a1, u64 a2) {
    u64 ret = verb;
    __asm__ volatile("outl %%eax, %%dx" : "+a"(ret) : "d"((unsigned short)HC_PORT), "D"(a0), "S"(a1), "c"(a2) : "memory");
    return (s64)ret;
}

static __attribute__((noreturn)) void finish(u64 code, u64 words) {
    hypercall(HC_EXIT, code, (u64)report, words * sizeof(s64));
    for (;;) __asm__ volatile("pause");   /* the VMM does not resume a guest after EXIT */
}

static u64 first8(const char *s) {
    u64 v = 0;
    for (int i = 0; i < 8 && s[i]; i++) v |= (u64)(u8)s[i] << (8 * i);
    return v;
}

static void enumerate_and_report(void) {
    s64 version = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    if (version < 0) { report[0] = version; finish(1, 1); }
    s64 count = hypercall(HC_ENUMERATE, (u64)devices, sizeof devices, 0);
    if (count < 0) { report[0] = version; report[1] = count; finish(2, 2); }
    u64 n = 0;
    report[n++] = version;
    report[n++] = count;
    for (s64 i = 0; i < count && i < 64; i++) {
        report[n++] = devices[i].devid;
        report[n++] = (s64)first8(devices[i].type);
    }
    finish(0, n);
}

static void bad_calls(u64 foreign_devid) {
    u64 n = 0;
    report[n++] = hypercall(HC_ENUMERATE, (u64)devices, sizeof devices, 0);           /* before NEGOTIATE */
    report[n++] = hypercall(HC_NEGOTIATE, 7, 9, 0);                                     /* versions nobody speaks */
    report[n++] = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);                 /* good: the guest goes on */
    report[n++] = hypercall(0x77, 0, 0, 0);                                             /* no such verb */
    report[n++] = hypercall(HC_ENUMERATE, 0x40000000UL, 4096, 0);                       /* block far outside guest memory */
    report[n++] = hypercall(HC_ENUMERATE, (4UL << 20) - 16, 4096, 0);                   /* block across the end of memory */
    report[n++] = hypercall(HC_ENUMERATE, (u64)devices, 1UL << 40, 0);                  /* absurd length */
    report[n++] = hypercall(HC_DEVOPEN, foreign_devid, 0, 0);                           /* another container's devid */
    report[n++] = hypercall(HC_ENUMERATE, (u64)devices, sizeof devices, 0);             /* good again */
    finish(0, n);
}

static void ping(u64 times) {
    s64 last = 0;
    for (u64 i = 0; i < times; i++) last = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    report[0] = last;
    finish(0, 1);
}

static void open_and_hold(u64 devid) {
    report[0] = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    report[1] = hypercall(HC_DEVOPEN, devid, 0, 0);
    report[2] = hypercall(HC_DEVOPEN, devid, 0, 0);
    report[3] = hypercall(HC_DEVCLOSE, devid + 1000, 0, 0);   /* never opened */
    finish(0, 4);                                           /* still holding devid: the VMM releases it */
}

static void doorbell(u64 devid, u64 kicks) {
    u64 n = 0;
    report[n++] = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    report[n++] = hypercall(HC_DEVSHM, devid, 0x200000, 0x200000);      /* not open yet */
    report[n++] = hypercall(HC_DEVOPEN, devid, 0, 0);
    report[n++] = hypercall(HC_DEVSHM, devid, 0x200000, 0x200000);      /* the free half of guest memory */
    report[n++] = hypercall(HC_DEVSHM, devid, 0x3ff000, 0x2000);        /* across the end of guest memory */
    report[n++] = hypercall(HC_SHMSIGNAL, devid, 99, 0);                /* no such queue */
    s64 token = hypercall(HC_SHMSIGNAL, devid, 1, 0);
    report[n++] = token;
    if (token > 0)
        for (u64 i = 0; i < kicks; i++)   /* KVM_IOEVENTFD: each lands on the kick eventfd without an exit */
            __asm__ volatile("outl %%eax, %%dx" : : "a"((u32)token), "d"((unsigned short)DOORBELL_PORT) : "memory");
    finish(0, n);
}

struct call_block {            /* DEVCALL's parameter block, 32 bytes */
    u64 in_addr;
    u32 in_len;
    u32 out_cap;
    u64 out_addr;
    u64 reserved;
};

static struct call_block cb;
static u8 out_buf[64];

static s64 devcall(u64 devid, u32 func, const void *in, u32 in_len, u32 out_cap) {
    cb.in_addr = (u64)in;
    cb.in_len = in_len;
    cb.out_cap = out_cap;
    cb.out_addr = (u64)out_buf;
    return hypercall(HC_DEVCALL, devid, func, (u64)&cb);
}

static u64 le64(const u8 *b) {
    u64 v = 0;
    for (int i = 0; i < 8; i++) v |= (u64)b[i] << (8 * i);
    return v;
}

static void devcalls(u64 devid) {
    static const char hello[] = "hello kvm";
    u8 arg[8];
    u64 n = 0;
    report[n++] = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    report[n++] = hypercall(HC_DEVOPEN, devid, 0, 0);
    report[n++] = devcall(devid, BC_GET_FEATURES, 0, 0, sizeof out_buf);
    u64 offered = le64(out_buf);
    report[n++] = (s64)offered;
    u64 ack = offered & ((1UL << 0) | (1UL << 32));                 /* ECHO_F_UPPERCASE, VIRTIO_F_VERSION_1 */
    u32 status = 1 | 2;                                              /* ACKNOWLEDGE, DRIVER: then features */
    for (int i = 0; i < 4; i++) arg[i] = (u8)(1 >> (8 * i));
    devcall(devid, BC_SET_STATUS, arg, 4, sizeof out_buf);
    for (int i = 0; i < 4; i++) arg[i] = (u8)(status >> (8 * i));
    devcall(devid, BC_SET_STATUS, arg, 4, sizeof out_buf);
    for (int i = 0; i < 8; i++) arg[i] = (u8)(ack >> (8 * i));
    report[n++] = devcall(devid, BC_SET_FEATURES, arg, 8, 0);
    status |= 8;                                                     /* FEATURES_OK */
    for (int i = 0; i < 4; i++) arg[i] = (u8)(status >> (8 * i));
    report[n++] = devcall(devid, BC_SET_STATUS, arg, 4, sizeof out_buf);
    report[n++] = out_buf[0];                                        /* the status the device reports */
    report[n++] = devcall(devid, MODEL_BASE + 1, hello, 9, sizeof out_buf);   /* test-echo CALL_ECHO */
    report[n++] = (s64)le64(out_buf);
    report[n++] = devcall(devid, 0x50, 0, 0, sizeof out_buf);        /* no such bus call */
    report[n++] = hypercall(HC_DEVCALL, devid, MODEL_BASE + 1, 0x40000000UL);  /* block outside guest memory */
    report[n++] = devcall(devid, MODEL_BASE + 1, hello, 9, 4);       /* reply larger than the buffer */
    report[n++] = devcall(devid, MODEL_BASE + 2, 0, 0, sizeof out_buf);       /* test-echo CALL_FAIL */
    finish(0, n);
}

/* rdi = mode, rsi = argument (set by the VMM). */
__attribute__((section(".text.start"), noreturn)) void _start(u64 mode, u64 arg) {
    switch (mode) {
    case MODE_ENUMERATE: enumerate_and_report(); break;
    case MODE_BAD_CALLS: bad_calls(arg); break;
    case MODE_SPIN: for (;;) __asm__ volatile(""); break;
    case MODE_UD2: __asm__ volatile("ud2"); break;
    case MODE_PING: ping(arg); break;
    case MODE_OPEN: open_and_hold(arg); break;
    case MODE_DOORBELL: doorbell(arg & 0xffffffffUL, arg >> 32); break;
    case MODE_DEVCALL: devcalls(arg); break;
    }
    report[0] = (s64)mode;
    finish(0xBAD, 1);
}
