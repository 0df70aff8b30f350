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
typedef unsigned short u16;
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
#define HC_WAIT       8
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
#define MODE_VENET       8   /* arg = address of struct venet_params: a venet round trip (below) */
#define MODE_VIRTIO_NET  9   /* arg = address of struct vnet_params: a virtio-net round trip over split rings (below) */
#define MODE_EVENTS     10   /* arg = address of struct events_params: bus events (DEVADD, DEVDROP, NEEDS_RESET) (below) */
#define MODE_KICK_WAKE  11   /* arg = devid | n << 32: n doorbell kicks, each answered by a host thread through memory */
#define MODE_RESPONDER  12   /* arg = address of struct responder_params: answer ARP and ping on a virtio-net device until stopped */

/* Bus calls (connectors/shm/PROTOCOL.md): the same funcs and payloads on every connector. */
#define BC_GET_FEATURES 0x01
#define BC_SET_FEATURES 0x02
#define BC_SET_STATUS   0x04
#define BC_READ_CONFIG  0x05
#define BC_SET_QUEUE    0x08
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
    report[n++] = hypercall(HC_WAIT, 1UL << 40, 0, 0);                                  /* a WAIT of twelve days */
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

/* ---------------------------------------------------------------------------------------------
 * The venet round trip (MODE_VENET): a vbus ethernet driver over IOQ rings in the guest's own memory.
 * Numbers from device-models/venet/VENET.md and bus-core's ring/ioq/IOQ-LAYOUT.md.
 * ------------------------------------------------------------------------------------------- */

/* What the host asks for, written by the VMM at GuestLayout.PARAMS before the run (read once). */
struct venet_params {
    u64 devid;
    u64 peer_mac;      /* 48 bits, the first byte on the wire most significant */
    u64 frames;        /* how many to send, and to get back */
    u64 length;        /* bytes per frame, 22 .. 1514 */
    u64 window;        /* frames sent and not yet back, at most (the echoing peer's rx ring must not run dry) */
    u64 want_sg;       /* ask for VENET_CAP_SG: tx descriptors are then struct venet_sg */
    u64 patience;      /* TSC ticks without any progress before the guest gives up and reports a stall */
    u64 wait_micros;   /* 0: spin while idle; else WAIT (the VMM's halt) for at most this long, woken by the device */
};

/* IOQ ring (IOQ_RING_VER 4) with its embedded shm-signal, as a 64-bit compiler lays out ioq.h. */
#define IOQ_MAGIC        0x47fa2fe4
#define IOQ_VER          4
#define SHM_SIGNAL_MAGIC 0x58fa39df
#define SHM_SIGNAL_VER   1
#define NORTH 0                       /* the driver: us */
#define SOUTH 1                       /* the device */

struct ioq_desc { u64 cookie; u64 ptr; u64 len; u8 valid; u8 sown; u8 pad[6]; };
struct ioq_idx { u32 head; u32 tail; u8 full; u8 pad[3]; };
struct shm_irq { u8 enabled; u8 pending; u8 dirty; };
struct ioq_ring {
    u32 magic, ver;
    u32 sig_magic, sig_ver;
    struct shm_irq irq[2];
    u8 pad0[2];
    struct ioq_idx idx[2];            /* [0] "valid", [1] "inuse" */
    u32 count;
    u32 pad1;
    struct ioq_desc desc[];
};
_Static_assert(__builtin_offsetof(struct ioq_ring, irq) == 16, "shm_signal irq[] at 16");
_Static_assert(__builtin_offsetof(struct ioq_ring, idx) == 24, "idx[] at 24");
_Static_assert(__builtin_offsetof(struct ioq_ring, count) == 48, "count at 48");
_Static_assert(__builtin_offsetof(struct ioq_ring, desc) == 56, "descriptors at 56");
_Static_assert(sizeof(struct ioq_desc) == 32, "32-byte descriptors");

#define barrier() __asm__ volatile("" ::: "memory")   /* x86 keeps stores in order, and loads: the compiler must too */

/* The driver (north) side of one ring. Never more than count - 1 descriptors out, so the full flags stay 0. */
struct ioq_drv {
    volatile struct ioq_ring *r;
    u32 count, tail, head, outstanding, staged;
    u32 token;                        /* the queue's doorbell (SHMSIGNAL) */
    u64 kicks, signals;
};

static void ioq_init(struct ioq_drv *q, u64 addr, u32 count) {
    q->r = (volatile struct ioq_ring *)addr;
    memset((void *)addr, 0, 56 + 32UL * count);
    q->r->ver = IOQ_VER;
    q->r->sig_magic = SHM_SIGNAL_MAGIC;
    q->r->sig_ver = SHM_SIGNAL_VER;
    q->r->count = count;
    barrier();
    q->r->magic = IOQ_MAGIC;          /* last: the head is complete */
    q->count = count;
    q->tail = q->head = q->outstanding = q->staged = 0;
    q->kicks = q->signals = 0;
}

static int ioq_room(const struct ioq_drv *q) { return q->outstanding + q->staged + 1 < q->count; }

/* Fills the descriptor at the tail; the device sees it only at ioq_publish. 0 if it was not ours. */
static int ioq_offer(struct ioq_drv *q, u64 cookie, u64 ptr, u64 len) {
    volatile struct ioq_desc *d = &q->r->desc[q->tail];
    if (d->sown != NORTH) return 0;
    d->cookie = cookie;
    d->ptr = ptr;
    d->len = len;
    d->valid = 1;
    q->tail = q->tail + 1 == q->count ? 0 : q->tail + 1;
    q->staged++;
    return 1;
}

/* Both tails, then ownership to the south, oldest first: the device never owns what the index has not published. */
static void ioq_publish(struct ioq_drv *q) {
    if (q->staged == 0) return;
    barrier();
    q->r->idx[0].tail = q->tail;
    q->r->idx[1].tail = q->tail;
    barrier();
    u32 i = (q->tail + q->count - q->staged) % q->count;
    for (u32 k = 0; k < q->staged; k++, i = i + 1 == q->count ? 0 : i + 1) q->r->desc[i].sown = SOUTH;
    q->outstanding += q->staged;
    q->staged = 0;
}

/* shm_signal_inject on the device's irq: always dirty; a doorbell only if the device sleeps and has none pending. */
static void ioq_kick(struct ioq_drv *q) {
    ioq_publish(q);
    q->r->irq[SOUTH].dirty = 1;
    __asm__ volatile("mfence" ::: "memory");   /* dirty visible before enabled/pending are read (the Dekker pair) */
    q->kicks++;
    if (q->r->irq[SOUTH].enabled && !q->r->irq[SOUTH].pending) {
        q->r->irq[SOUTH].pending = 1;
        q->signals++;
        __asm__ volatile("outl %%eax, %%dx" : : "a"(q->token), "d"((unsigned short)DOORBELL_PORT) : "memory");
    }
}

/* The oldest descriptor the device handed back: its cookie and length; 0 if none is back yet. */
static int ioq_reap(struct ioq_drv *q, u64 *cookie, u64 *len) {
    if (q->outstanding == 0) return 0;
    volatile struct ioq_desc *d = &q->r->desc[q->head];
    if (d->sown != NORTH) return 0;
    barrier();
    *cookie = d->cookie;
    *len = d->len;
    d->valid = 0;
    q->head = q->head + 1 == q->count ? 0 : q->head + 1;
    q->outstanding--;
    q->r->idx[0].head = q->head;
    return 1;
}

static inline u64 rdtsc(void) {
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

/* venet (VENET.md): queues, device calls, capabilities, events, the venet_sg tx header. */
#define VENET_RX 0
#define VENET_TX 1
#define VENET_EVQ 2
#define VENET_LINKUP   (MODEL_BASE + 0)
#define VENET_MACQUERY (MODEL_BASE + 2)
#define VENET_NEGCAP   (MODEL_BASE + 3)
#define CAP_GROUP_SG 0
#define CAP_GROUP_EVENTQ 1
#define CAP_SG 1
#define CAP_EVQ_LINKSTATE 1
#define FEATURE_SG (1UL << 0)
#define FEATURE_EVQ_LINKSTATE (1UL << 8)
#define EVENT_LINKSTATE 0
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8

/* Where everything lives: one DEVSHM window, the free half of a 4 MiB micro-VM. */
#define WINDOW     0x200000UL
#define WINDOW_LEN 0x200000UL
#define RING_RX    0x200000UL
#define RING_TX    0x201000UL
#define RING_EVQ   0x202000UL
#define RX_BUFS    0x210000UL
#define TX_BUFS    0x230000UL
#define EV_BUFS    0x250000UL
#define SG_DESCS   0x251000UL
#define RING_COUNT 64
#define BUF_SIZE   2048
#define EV_SIZE    32
#define SG_SIZE    64
#define ETHERTYPE  0x88B5

/* Where a run of either round trip failed: the EXIT code is 100 + stage, the report [value, a, b, c] (RoundTripStage.java). */
enum stage {
    ST_OPEN = 1, ST_SHM, ST_FEATURES, ST_NEGCAP, ST_MAC, ST_QUEUE, ST_SIGNAL, ST_DRIVER_OK, ST_LINKUP, ST_LINK_EVENT,
    ST_TX_DROPPED, ST_STALLED, ST_RX_LENGTH, ST_RX_BYTE, ST_RING, ST_RX_HEADER
};

static __attribute__((noreturn)) void fail_at(u64 stage, s64 value, s64 a, s64 b, s64 c) {
    report[0] = value;
    report[1] = a;
    report[2] = b;
    report[3] = c;
    finish(100 + stage, 4);
}

static void put16(u8 *p, u32 v) { p[0] = (u8)v; p[1] = (u8)(v >> 8); }
static void put32(u8 *p, u32 v) { for (int i = 0; i < 4; i++) p[i] = (u8)(v >> (8 * i)); }
static void put64(u8 *p, u64 v) { for (int i = 0; i < 8; i++) p[i] = (u8)(v >> (8 * i)); }
static u32 le32(const u8 *b) { return (u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24; }

static s64 set_status(u64 devid, u32 status) {
    u8 arg[4];
    put32(arg, status);
    s64 r = devcall(devid, BC_SET_STATUS, arg, 4, sizeof out_buf);
    return r < 0 ? r : (s64)le32(out_buf);
}

static u32 negcap(u64 devid, u32 gid, u32 bits) {
    u8 arg[8];
    put32(arg, gid);
    put32(arg + 4, bits);
    s64 r = devcall(devid, VENET_NEGCAP, arg, 8, sizeof out_buf);
    if (r != 8 || le32(out_buf) != gid) fail_at(ST_NEGCAP, r, gid, bits, le32(out_buf));
    return le32(out_buf + 4);
}

/* SET_QUEUE {u16 queue, u16 size, u64 desc, u64 avail, u64 used} (28 bytes), then SHMSIGNAL for its doorbell token. */
static void setup_queue(u64 devid, struct ioq_drv *q, u32 index, u64 ring) {
    u8 arg[28];
    ioq_init(q, ring, RING_COUNT);
    put16(arg, index);
    put16(arg + 2, RING_COUNT);
    put64(arg + 4, ring + 56);         /* desc: the table embedded in the ring head */
    put64(arg + 12, ring);             /* avail: the ring head */
    put64(arg + 20, 0);                /* used: none for IOQ */
    s64 r = devcall(devid, BC_SET_QUEUE, arg, sizeof arg, 0);
    if (r < 0) fail_at(ST_QUEUE, r, index, 0, 0);
    s64 token = hypercall(HC_SHMSIGNAL, devid, index, 0);
    if (token <= 0) fail_at(ST_SIGNAL, token, index, 0, 0);
    q->token = (u32)token;
}

static u64 frame_byte(u64 seq, u64 i) { return (u8)(seq * 31 + i); }

/* dst, src, ethertype 0x88B5, the sequence number (big-endian), then a pattern derived from it. */
static void build_frame(u8 *f, u64 len, u64 dst, u64 src, u64 seq) {
    for (int i = 0; i < 6; i++) {
        f[i] = (u8)(dst >> (8 * (5 - i)));
        f[6 + i] = (u8)(src >> (8 * (5 - i)));
    }
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    for (int i = 0; i < 8; i++) f[14 + i] = (u8)(seq >> (8 * (7 - i)));
    for (u64 i = 22; i < len; i++) f[i] = (u8)frame_byte(seq, i);
}

/* The echo of frame seq: from the peer to us, the rest as we sent it. The first byte that differs is reported. */
static void check_echo(const u8 *f, u64 len, u64 length, u64 peer_mac, u64 mac, u64 seq) {
    if (len != length) fail_at(ST_RX_LENGTH, (s64)seq, (s64)len, (s64)length, 0);
    u8 want[22];
    build_frame(want, 22, mac, peer_mac, seq);
    for (u64 i = 0; i < len; i++) {
        u8 w = i < 22 ? want[i] : (u8)frame_byte(seq, i);
        if (f[i] != w) fail_at(ST_RX_BYTE, (s64)seq, (s64)i, w, f[i]);
    }
}

static struct ioq_drv rxq, txq, evq;

/* Something to reap on rx or tx: the device handed the oldest outstanding descriptor back. */
static int work_ready(void) {
    return (rxq.outstanding && rxq.r->desc[rxq.head].sown == NORTH) || (txq.outstanding && txq.r->desc[txq.head].sown == NORTH);
}

/*
 * Sleeps in the VMM until the device signals rx or tx (or `micros` pass): our irqs are armed (pending
 * cleared, enabled set) and the rings looked at again after a full fence, so a completion the device
 * made before it saw `enabled` is found here, and one made after is signalled (the Dekker pair of
 * IOQ-LAYOUT.md's shm-signal). Counts the WAITs, and those a signal ended (not the time).
 */
static u64 waits, wakes;

static void idle(u64 micros) {
    struct ioq_drv *qs[2] = {&rxq, &txq};
    for (int i = 0; i < 2; i++) {
        qs[i]->r->irq[NORTH].pending = 0;
        qs[i]->r->irq[NORTH].dirty = 0;
        qs[i]->r->irq[NORTH].enabled = 1;
    }
    __asm__ volatile("mfence" ::: "memory");
    if (!work_ready()) {
        waits++;
        if (hypercall(HC_WAIT, micros, 0, 0) > 0) wakes++;
    }
    for (int i = 0; i < 2; i++) qs[i]->r->irq[NORTH].enabled = 0;   /* polling again: no signals while we run */
}

/*
 * After one pass of a round trip's loop: progress restarts the patience; without progress the guest
 * gives up once the patience is spent (STALLED), else sleeps in WAIT (`sleep`) if asked to, else spins.
 */
static void pace(int progress, u64 *since, u64 patience, u64 wait_micros, void (*sleep)(u64), u64 sent, u64 got, u64 done) {
    if (progress) *since = rdtsc();
    else if (rdtsc() - *since > patience) fail_at(ST_STALLED, (s64)sent, (s64)got, (s64)done, 0);
    else if (wait_micros) sleep(wait_micros);
    else __asm__ volatile("pause");
}

static void venet(const struct venet_params *given) {
    struct venet_params p = *given;   /* read once */
    u64 devid = p.devid;
    u64 n = 0;
    s64 version = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    s64 r = hypercall(HC_DEVOPEN, devid, 0, 0);
    if (version < 0 || r < 0) fail_at(ST_OPEN, version < 0 ? version : r, 0, 0, 0);
    r = hypercall(HC_DEVSHM, devid, WINDOW, WINDOW_LEN);
    if (r < 0) fail_at(ST_SHM, r, 0, 0, 0);

    /* features, then capabilities within them */
    set_status(devid, STATUS_ACKNOWLEDGE);
    set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    r = devcall(devid, BC_GET_FEATURES, 0, 0, sizeof out_buf);
    u64 offered = le64(out_buf);
    u64 ack = offered & (FEATURE_EVQ_LINKSTATE | (p.want_sg ? FEATURE_SG : 0));
    u8 arg[8];
    put64(arg, ack);
    r = devcall(devid, BC_SET_FEATURES, arg, 8, 0);
    s64 status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (r < 0 || status < 0 || !(status & STATUS_FEATURES_OK)) fail_at(ST_FEATURES, r < 0 ? r : status, (s64)offered, (s64)ack, 0);
    u32 sg = negcap(devid, CAP_GROUP_SG, p.want_sg ? CAP_SG : 0);
    u32 events = negcap(devid, CAP_GROUP_EVENTQ, CAP_EVQ_LINKSTATE);
    r = devcall(devid, VENET_MACQUERY, arg, 6, sizeof out_buf);
    if (r != 6) fail_at(ST_MAC, r, 0, 0, 0);
    u64 mac = 0;
    for (int i = 0; i < 6; i++) mac = mac << 8 | out_buf[i];

    /* rings in our memory, each with its doorbell; then DRIVER_OK starts the device */
    setup_queue(devid, &rxq, VENET_RX, RING_RX);
    setup_queue(devid, &txq, VENET_TX, RING_TX);
    setup_queue(devid, &evq, VENET_EVQ, RING_EVQ);
    status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    if (status < 0 || !(status & STATUS_DRIVER_OK)) fail_at(ST_DRIVER_OK, status, 0, 0, 0);
    for (u64 b = 0; ioq_room(&rxq); b++) ioq_offer(&rxq, b, RX_BUFS + b * BUF_SIZE, BUF_SIZE);
    ioq_publish(&rxq);                 /* the device takes rx buffers when a frame arrives: no kick needed */
    for (u64 b = 0; ioq_room(&evq); b++) ioq_offer(&evq, b, EV_BUFS + b * EV_SIZE, EV_SIZE);
    ioq_kick(&evq);

    /* link up, and wait for the device to say so on the event queue */
    r = devcall(devid, VENET_LINKUP, 0, 0, 0);
    if (r < 0) fail_at(ST_LINKUP, r, 0, 0, 0);
    s64 link = -1;
    u64 cookie, len, since = rdtsc();
    while (link < 0) {
        if (ioq_reap(&evq, &cookie, &len)) {
            const u8 *e = (const u8 *)(EV_BUFS + (cookie % RING_COUNT) * EV_SIZE);
            if (len > EV_SIZE || le32(e + 8) != EVENT_LINKSTATE) fail_at(ST_LINK_EVENT, (s64)len, le32(e + 8), 0, 0);
            link = e[12];
        } else if (rdtsc() - since > p.patience) {
            fail_at(ST_LINK_EVENT, -1, 0, 0, 0);
        } else {
            __asm__ volatile("pause");
        }
    }

    /* N frames out, N echoes back, at most `window` in flight */
    u64 sent = 0, got = 0, tx_done = 0;
    since = rdtsc();
    while (got < p.frames) {
        int progress = 0;
        while (ioq_reap(&txq, &cookie, &len)) {
            if (len == 0) fail_at(ST_TX_DROPPED, (s64)cookie, 0, 0, 0);   /* the device completes a dropped frame with 0 */
            tx_done++;
            progress = 1;
        }
        while (sent < p.frames && sent - got < p.window && ioq_room(&txq)) {
            u64 slot = txq.tail;
            u8 *f = (u8 *)(TX_BUFS + slot * BUF_SIZE);
            build_frame(f, p.length, p.peer_mac, mac, sent);
            int ok;
            if (sg) {                  /* struct venet_sg with one iov: cookie, flags, len, ..., count, iov[0] {len, ptr} */
                u8 *d = (u8 *)(SG_DESCS + slot * SG_SIZE);
                memset(d, 0, SG_SIZE);
                put64(d + 0, sent);
                put32(d + 12, (u32)p.length);
                put32(d + 28, 1);
                put32(d + 32, (u32)p.length);
                put64(d + 40, (u64)f);
                ok = ioq_offer(&txq, sent, (u64)d, 48);
            } else {
                ok = ioq_offer(&txq, sent, (u64)f, p.length);
            }
            if (!ok) fail_at(ST_RING, VENET_TX, (s64)slot, 0, 0);
            sent++;
            progress = 1;
        }
        if (txq.staged) ioq_kick(&txq);
        int reposted = 0;
        while (ioq_reap(&rxq, &cookie, &len)) {
            if (len > BUF_SIZE) fail_at(ST_RX_LENGTH, (s64)got, (s64)len, BUF_SIZE, 1);
            check_echo((const u8 *)(RX_BUFS + (cookie % RING_COUNT) * BUF_SIZE), len, p.length, p.peer_mac, mac, got);
            got++;
            if (!ioq_offer(&rxq, cookie % RING_COUNT, RX_BUFS + (cookie % RING_COUNT) * BUF_SIZE, BUF_SIZE))
                fail_at(ST_RING, VENET_RX, rxq.tail, 0, 0);
            reposted = 1;
        }
        if (reposted) {
            ioq_publish(&rxq);
            progress = 1;
        }
        pace(progress, &since, p.patience, p.wait_micros, idle, sent, got, tx_done);
    }
    report[n++] = version;
    report[n++] = sg;
    report[n++] = events;
    report[n++] = (s64)mac;
    report[n++] = link;
    report[n++] = (s64)sent;
    report[n++] = (s64)got;
    report[n++] = (s64)tx_done;
    report[n++] = (s64)txq.kicks;
    report[n++] = (s64)txq.signals;
    report[n++] = (s64)waits;
    report[n++] = (s64)wakes;
    finish(0, n);
}

/* ---------------------------------------------------------------------------------------------
 * The virtio-net round trip (MODE_VIRTIO_NET): a virtio 1.x network driver over split virtqueues in
 * the guest's own memory (virtio 1.2 sections 2.7 and 5.1), with nothing but hypercalls, the doorbell
 * port and its memory. The same frames, peer and checks as the venet round trip.
 * ------------------------------------------------------------------------------------------- */

struct vnet_params {
    u64 devid;
    u64 peer_mac;
    u64 frames;
    u64 length;        /* bytes per frame (without the virtio_net_hdr), 22 .. 1514 */
    u64 window;        /* frames sent and not yet back, at most */
    u64 event_idx;     /* ask for VIRTIO_F_EVENT_IDX: suppression by used_event/avail_event instead of the flags */
    u64 patience;      /* TSC ticks without progress before a stall is reported */
    u64 wait_micros;   /* 0: spin while idle; else WAIT for at most this long, woken by the device */
};

#define VIRTIO_F_VERSION_1   (1UL << 32)
#define VIRTIO_F_EVENT_IDX   (1UL << 29)
#define VIRTIO_NET_F_MAC     (1UL << 5)
#define VNET_RX 0
#define VNET_TX 1
#define VNET_HDR 12                    /* struct virtio_net_hdr with num_buffers: its size under VERSION_1 */
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1
#define VQ_SIZE 64
#define VQ_RX_DESC  0x200000UL         /* each ring: descriptors, avail 1 KiB further, used on the next page */
#define VQ_TX_DESC  0x202000UL

struct vring_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct vring_used_elem { u32 id; u32 len; };
_Static_assert(sizeof(struct vring_desc) == 16, "16-byte descriptors");

/* The driver side of one split ring; descriptor i always carries buffer i of the queue. */
struct vq {
    volatile struct vring_desc *desc;
    volatile u16 *avail;               /* flags, idx, ring[VQ_SIZE], used_event */
    volatile u16 *used;                /* flags, idx, then the elements; avail_event after them */
    u16 avail_idx, last_used, kicked_idx;
    u32 token;
    int event_idx;
    u64 kicks, signals;
};

static volatile struct vring_used_elem *used_ring(const struct vq *q) { return (volatile struct vring_used_elem *)(q->used + 2); }
static volatile u16 *used_event(const struct vq *q) { return q->avail + 2 + VQ_SIZE; }
static volatile u16 *avail_event(const struct vq *q) { return (volatile u16 *)(used_ring(q) + VQ_SIZE); }

static void vq_setup(u64 devid, struct vq *q, u32 index, u64 base, int event_idx) {
    u64 avail = base + 0x400, used = base + 0x1000;
    memset((void *)base, 0, 0x2000);
    q->desc = (volatile struct vring_desc *)base;
    q->avail = (volatile u16 *)avail;
    q->used = (volatile u16 *)used;
    q->avail_idx = q->last_used = q->kicked_idx = 0;
    q->event_idx = event_idx;
    q->kicks = q->signals = 0;
    u8 arg[28];
    put16(arg, index);
    put16(arg + 2, VQ_SIZE);
    put64(arg + 4, base);
    put64(arg + 12, avail);
    put64(arg + 20, used);
    s64 r = devcall(devid, BC_SET_QUEUE, arg, sizeof arg, 0);
    if (r < 0) fail_at(ST_QUEUE, r, index, 0, 0);
    s64 token = hypercall(HC_SHMSIGNAL, devid, index, 0);
    if (token <= 0) fail_at(ST_SIGNAL, token, index, 0, 0);
    q->token = (u32)token;
}

/* Descriptor `id` as one buffer, into the avail ring; the device sees it at vq_publish. */
static void vq_add(struct vq *q, u16 id, u64 addr, u32 len, int device_writes) {
    q->desc[id].addr = addr;
    q->desc[id].len = len;
    q->desc[id].flags = device_writes ? VRING_DESC_F_WRITE : 0;
    q->desc[id].next = 0;
    q->avail[2 + q->avail_idx % VQ_SIZE] = id;
    q->avail_idx++;
}

static void vq_publish(struct vq *q) {
    barrier();                         /* descriptors and ring entries before the index (x86 keeps stores in order) */
    q->avail[1] = q->avail_idx;
}

/* vring_need_event: has the index moved past `event` in the step from old to new? */
static int need_event(u16 event, u16 new_idx, u16 old) { return (u16)(new_idx - event - 1) < (u16)(new_idx - old); }

/* Publishes, then rings the doorbell unless the device said it needs none (NO_NOTIFY, or avail_event not crossed). */
static void vq_kick(struct vq *q) {
    vq_publish(q);
    __asm__ volatile("mfence" ::: "memory");   /* the index visible before the device's suppression is read */
    q->kicks++;
    int ring = q->event_idx ? need_event(*avail_event(q), q->avail_idx, q->kicked_idx) : !(q->used[0] & VRING_USED_F_NO_NOTIFY);
    q->kicked_idx = q->avail_idx;
    if (ring) {
        q->signals++;
        __asm__ volatile("outl %%eax, %%dx" : : "a"(q->token), "d"((unsigned short)DOORBELL_PORT) : "memory");
    }
}

static int vq_has_used(const struct vq *q) { return q->used[1] != q->last_used; }

/* The next used element: its id and length; 0 if none. Ids outside the ring are a device fault, reported. */
static int vq_reap(struct vq *q, u32 which, u32 *id, u32 *len) {
    if (!vq_has_used(q)) return 0;
    barrier();                         /* the element after the index */
    volatile struct vring_used_elem *e = &used_ring(q)[q->last_used % VQ_SIZE];
    *id = e->id;
    *len = e->len;
    if (*id >= VQ_SIZE) fail_at(ST_RING, which, *id, q->last_used, 0);
    q->last_used++;
    return 1;
}

/* Signals from the device: off while we poll, on (with a second look) before a WAIT. */
static void vq_callbacks(struct vq *q, int on) {
    if (q->event_idx) *used_event(q) = on ? q->last_used : (u16)(q->last_used - 1);
    else q->avail[0] = on ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
}

static struct vq vrx, vtx;

static void vnet_idle(u64 micros) {
    vq_callbacks(&vrx, 1);
    vq_callbacks(&vtx, 1);
    __asm__ volatile("mfence" ::: "memory");  /* armed before the second look: a completion after it is signalled */
    if (!vq_has_used(&vrx) && !vq_has_used(&vtx)) {
        waits++;
        if (hypercall(HC_WAIT, micros, 0, 0) > 0) wakes++;
    }
    vq_callbacks(&vrx, 0);
    vq_callbacks(&vtx, 0);
}

static void virtio_net(const struct vnet_params *given) {
    struct vnet_params p = *given;     /* read once */
    u64 devid = p.devid, n = 0;
    waits = wakes = 0;
    s64 version = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    s64 r = hypercall(HC_DEVOPEN, devid, 0, 0);
    if (version < 0 || r < 0) fail_at(ST_OPEN, version < 0 ? version : r, 0, 0, 0);
    r = hypercall(HC_DEVSHM, devid, WINDOW, WINDOW_LEN);
    if (r < 0) fail_at(ST_SHM, r, 0, 0, 0);

    set_status(devid, STATUS_ACKNOWLEDGE);
    set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    r = devcall(devid, BC_GET_FEATURES, 0, 0, sizeof out_buf);
    u64 offered = le64(out_buf);
    u64 ack = offered & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | (p.event_idx ? VIRTIO_F_EVENT_IDX : 0));
    u8 arg[8];
    put64(arg, ack);
    r = devcall(devid, BC_SET_FEATURES, arg, 8, 0);
    s64 status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (r < 0 || status < 0 || !(status & STATUS_FEATURES_OK) || !(ack & VIRTIO_F_VERSION_1))
        fail_at(ST_FEATURES, r < 0 ? r : status, (s64)offered, (s64)ack, 0);
    put32(arg, 0);                     /* READ_CONFIG {u32 offset, u32 length}: mac[6] at 0 */
    put32(arg + 4, 6);
    r = devcall(devid, BC_READ_CONFIG, arg, 8, sizeof out_buf);
    if (r != 6) fail_at(ST_MAC, r, 0, 0, 0);
    u64 mac = 0;
    for (int i = 0; i < 6; i++) mac = mac << 8 | out_buf[i];

    vq_setup(devid, &vrx, VNET_RX, VQ_RX_DESC, (ack & VIRTIO_F_EVENT_IDX) != 0);
    vq_setup(devid, &vtx, VNET_TX, VQ_TX_DESC, (ack & VIRTIO_F_EVENT_IDX) != 0);
    vq_callbacks(&vrx, 0);
    vq_callbacks(&vtx, 0);
    status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    if (status < 0 || !(status & STATUS_DRIVER_OK)) fail_at(ST_DRIVER_OK, status, 0, 0, 0);
    for (u16 b = 0; b < VQ_SIZE; b++) vq_add(&vrx, b, RX_BUFS + (u64)b * BUF_SIZE, BUF_SIZE, 1);
    vq_kick(&vrx);

    u16 tx_free[VQ_SIZE];
    u32 tx_free_count = 0;
    for (int b = VQ_SIZE - 1; b >= 0; b--) tx_free[tx_free_count++] = (u16)b;
    u64 sent = 0, got = 0, tx_done = 0, since = rdtsc();
    u32 id, len;
    while (got < p.frames) {
        int progress = 0;
        while (vq_reap(&vtx, VNET_TX, &id, &len)) {
            tx_free[tx_free_count++] = (u16)id;
            tx_done++;
            progress = 1;
        }
        int staged = 0;
        while (sent < p.frames && sent - got < p.window && tx_free_count > 0) {
            u16 slot = tx_free[--tx_free_count];
            u8 *b = (u8 *)(TX_BUFS + (u64)slot * BUF_SIZE);
            memset(b, 0, VNET_HDR);            /* no offload asked for: flags 0, GSO_NONE */
            build_frame(b + VNET_HDR, p.length, p.peer_mac, mac, sent);
            vq_add(&vtx, slot, (u64)b, (u32)(VNET_HDR + p.length), 0);
            sent++;
            staged = 1;
        }
        if (staged) {
            vq_kick(&vtx);
            progress = 1;
        }
        int reposted = 0;
        while (vq_reap(&vrx, VNET_RX, &id, &len)) {
            const u8 *b = (const u8 *)(RX_BUFS + (u64)id * BUF_SIZE);
            if (len < VNET_HDR || len > BUF_SIZE) fail_at(ST_RX_LENGTH, (s64)got, (s64)len, (s64)(VNET_HDR + p.length), 1);
            if (b[10] != 1 || b[11] != 0) fail_at(ST_RX_HEADER, (s64)got, b[10] | b[11] << 8, b[0], b[1]);   /* num_buffers 1 */
            check_echo(b + VNET_HDR, len - VNET_HDR, p.length, p.peer_mac, mac, got);
            got++;
            vq_add(&vrx, (u16)id, (u64)b, BUF_SIZE, 1);
            reposted = 1;
        }
        if (reposted) {
            vq_kick(&vrx);
            progress = 1;
        }
        pace(progress, &since, p.patience, p.wait_micros, vnet_idle, sent, got, tx_done);
    }
    report[n++] = version;
    report[n++] = (s64)ack;
    report[n++] = (s64)mac;
    report[n++] = (s64)sent;
    report[n++] = (s64)got;
    report[n++] = (s64)tx_done;
    report[n++] = (s64)vtx.kicks;
    report[n++] = (s64)vtx.signals;
    report[n++] = (s64)vrx.signals;
    report[n++] = (s64)waits;
    report[n++] = (s64)wakes;
    finish(0, n);
}

/* ---------------------------------------------------------------------------------------------
 * Bus events (MODE_EVENTS): the guest registers its event ring (BUSEVENTS), opens a virtio-net device,
 * and sleeps in WAIT until the bus tells it something. It opens a device that comes (DEVADD); once it
 * has also seen that device go (DEVDROP), it breaks the device it holds (a tx descriptor outside the device's memory) and waits for
 * the bus to say that device needs a reset. Reports every event it saw.
 * ------------------------------------------------------------------------------------------- */

struct events_params {
    u64 devid;         /* a virtio-net device to open, and then to break */
    u64 patience;      /* TSC ticks without an event before the guest gives up */
};

#define HC_BUSEVENTS 9
#define MAX_WAIT 1000000               /* HypercallAbi.MAX_WAIT_MICROS */
#define EV_RING      0x300000UL        /* outside the device's window: the device never sees the event ring */
#define EV_RING_LEN  4096
#define EV_DEVADD 1
#define EV_DEVDROP 2
#define EV_NEEDS_RESET 3
#define MAX_EVENTS 16

struct bus_event { u32 kind; u32 devid; char detail[24]; };
struct bus_event_ring { u32 head, tail, count, lost; struct bus_event e[]; };

static void events(const struct events_params *given) {
    struct events_params p = *given;
    volatile struct bus_event_ring *ring = (volatile struct bus_event_ring *)EV_RING;
    u64 n = 0, seen = 0, devid = p.devid;
    waits = wakes = 0;
    s64 version = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    s64 count = hypercall(HC_BUSEVENTS, EV_RING, EV_RING_LEN, 0);
    if (version < 0 || count <= 0) fail_at(ST_OPEN, version < 0 ? version : count, 0, 0, 0);
    s64 r = hypercall(HC_DEVOPEN, devid, 0, 0);
    if (r < 0) fail_at(ST_OPEN, r, 1, 0, 0);
    r = hypercall(HC_DEVSHM, devid, WINDOW, 0x100000);
    if (r < 0) fail_at(ST_SHM, r, 0, 0, 0);
    set_status(devid, STATUS_ACKNOWLEDGE);
    set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    u8 arg[8];
    put64(arg, VIRTIO_F_VERSION_1);
    devcall(devid, BC_SET_FEATURES, arg, 8, 0);
    s64 status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (status < 0 || !(status & STATUS_FEATURES_OK)) fail_at(ST_FEATURES, status, 0, 0, 0);
    vq_setup(devid, &vrx, VNET_RX, VQ_RX_DESC, 0);
    vq_setup(devid, &vtx, VNET_TX, VQ_TX_DESC, 0);
    status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    if (status < 0 || !(status & STATUS_DRIVER_OK)) fail_at(ST_DRIVER_OK, status, 0, 0, 0);

    int added = 0, dropped = 0, broken = 0, reset = 0;
    s64 opened = 1;                    /* DEVOPEN's result for the hot-added device (1: never tried) */
    u32 tail = 0;
    u64 since = rdtsc();
    report[n++] = count;
    n++;                               /* report[1]: how many events follow, filled in at the end */
    while (!reset) {
        u32 head = ring->head;
        barrier();                     /* the entries after the index that published them */
        if (head == tail) {
            if (rdtsc() - since > p.patience) fail_at(ST_STALLED, (s64)seen, added, dropped, broken);
            waits++;
            if (hypercall(HC_WAIT, MAX_WAIT, 0, 0) > 0) wakes++;
            continue;
        }
        while (tail != head) {
            volatile struct bus_event *e = &ring->e[tail % ring->count];
            u64 detail = 0;
            for (int i = 0; i < 8 && e->detail[i]; i++) detail |= (u64)(u8)e->detail[i] << (8 * i);
            if (seen < MAX_EVENTS) {
                report[n++] = e->kind;
                report[n++] = e->devid;
                report[n++] = (s64)detail;
            }
            seen++;
            if (e->kind == EV_DEVADD && e->devid != devid && !added) {
                added = 1;
                opened = hypercall(HC_DEVOPEN, e->devid, 0, 0);   /* the newcomer is ours to drive */
            }
            if (e->kind == EV_DEVDROP && e->devid != devid) dropped = 1;
            if (e->kind == EV_NEEDS_RESET && e->devid == devid) reset = 1;
            tail++;
        }
        barrier();
        ring->tail = tail;             /* room for the VMM again */
        since = rdtsc();
        if (added && dropped && !broken) {
            vq_add(&vtx, 0, 0x100000UL, 64, 0);      /* below the device's window: a fault, the device needs a reset */
            vq_kick(&vtx);
            broken = 1;
        }
    }
    report[1] = (s64)seen;
    report[n++] = ring->lost;
    report[n++] = (s64)waits;
    report[n++] = (s64)wakes;
    report[n++] = opened;
    finish(0, n);
}

/*
 * Kick to wake-up (MODE_KICK_WAKE): n times, write a sequence number, kick queue 1's doorbell
 * (KVM_IOEVENTFD, no exit), and spin until a host thread woken by the kick eventfd echoes the number
 * back in memory. The time per kick is the doorbell's latency to a sleeping host thread, the echo
 * being a plain store the spinning guest sees at once (KickWakeProbe).
 */
#define KW_SEQ  0x300000UL
#define KW_ECHO 0x300008UL

static void kick_wake(u64 devid, u64 times) {
    volatile u64 *seq = (volatile u64 *)KW_SEQ, *echo = (volatile u64 *)KW_ECHO;
    s64 r = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    if (r >= 0) r = hypercall(HC_DEVOPEN, devid, 0, 0);
    if (r >= 0) r = hypercall(HC_DEVSHM, devid, WINDOW, WINDOW_LEN);
    s64 token = r < 0 ? r : hypercall(HC_SHMSIGNAL, devid, 1, 0);
    if (token <= 0) fail_at(ST_SIGNAL, token, 0, 0, 0);
    for (u64 i = 1; i <= times; i++) {
        *seq = i;
        __asm__ volatile("outl %%eax, %%dx" : : "a"((u32)token), "d"((unsigned short)DOORBELL_PORT) : "memory");
        u64 since = rdtsc();
        while (*echo != i) {
            if (rdtsc() - since > 30000000000UL) fail_at(ST_STALLED, (s64)i, (s64)*echo, 0, 0);   /* ~10 s: nobody answers */
            __asm__ volatile("pause");
        }
    }
    report[0] = (s64)times;
    finish(0, 1);
}

/* ---------------------------------------------------------------------------------------------
 * The responder (MODE_RESPONDER): a host on the network, as small as one can be. It drives a virtio-net
 * device like virtio_net() and answers, until the VMM stops it, ARP requests for its IPv4 address and
 * ICMP echo requests to it; everything else it counts and drops. While nothing arrives it sleeps in WAIT
 * with the rx ring's signal armed. Its counters live at RESPONDER_STATS for the host to read (guest
 * values: the host shows them, never trusts them).
 * ------------------------------------------------------------------------------------------- */

struct responder_params {
    u64 devid;
    u64 ip;            /* IPv4 address, the first byte on the wire most significant */
};

#define MAX_WAIT_MICROS_GUEST 1000000
#define RESPONDER_STATS 0x300000UL   /* u64 frames seen, arp replies, echo replies, ignored, tx slots short */
#define ETH_ARP  0x0806
#define ETH_IPV4 0x0800

static u32 be16(const u8 *p) { return (u32)p[0] << 8 | p[1]; }
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }
static void put_mac(u8 *p, u64 mac) { for (int i = 0; i < 6; i++) p[i] = (u8)(mac >> (8 * (5 - i))); }

/* The reply to frame f (len bytes) in o, or 0 if f asks nothing of us. */
static u32 respond(const u8 *f, u32 len, u8 *o, u64 mac, u32 ip, volatile u64 *stats) {
    if (len < 14) return 0;
    u32 type = be16(f + 12);
    if (type == ETH_ARP && len >= 42 && be16(f + 14) == 1 && be16(f + 16) == ETH_IPV4 && f[18] == 6 && f[19] == 4
            && be16(f + 20) == 1 && be32(f + 38) == ip) {
        memcpy(o, f + 6, 6);                       /* to the asker */
        put_mac(o + 6, mac);
        o[12] = 0x08; o[13] = 0x06;
        memcpy(o + 14, f + 14, 6);                 /* htype, ptype, hlen, plen */
        o[20] = 0; o[21] = 2;                      /* a reply */
        put_mac(o + 22, mac);                      /* sha, spa: us */
        memcpy(o + 28, f + 38, 4);
        memcpy(o + 32, f + 22, 10);                /* tha, tpa: the asker */
        memset(o + 42, 0, 18);                     /* padded to the 60-byte minimum */
        stats[1]++;
        return 60;
    }
    if (type == ETH_IPV4 && len >= 14 + 20 + 8) {
        const u8 *iph = f + 14;
        u32 ihl = (iph[0] & 15) * 4;
        u32 total = be16(iph + 2);
        if ((iph[0] >> 4) != 4 || ihl < 20 || total < ihl + 8 || 14 + total > len || iph[9] != 1 || be32(iph + 16) != ip) return 0;
        if ((be16(iph + 6) & 0x3fff) != 0) return 0;   /* a fragment: not ours to answer */
        const u8 *icmp = iph + ihl;
        if (icmp[0] != 8 || icmp[1] != 0) return 0;    /* echo request only */
        memcpy(o, f + 6, 6);
        put_mac(o + 6, mac);
        memcpy(o + 12, f + 12, 2 + total);
        u8 *oip = o + 14;
        memcpy(oip + 12, iph + 16, 4);             /* swapped addresses: the header checksum stays right */
        memcpy(oip + 16, iph + 12, 4);
        u8 *oicmp = oip + ihl;
        oicmp[0] = 0;                              /* echo reply: the checksum grows by 0x0800 (RFC 1624) */
        u32 sum = be16(oicmp + 2) + 0x0800;
        sum = (sum & 0xffff) + (sum >> 16);
        oicmp[2] = (u8)(sum >> 8);
        oicmp[3] = (u8)sum;
        stats[2]++;
        return 14 + total < 60 ? (memset(o + 14 + total, 0, 60 - 14 - total), 60) : 14 + total;
    }
    return 0;
}

static void responder(const struct responder_params *given) {
    struct responder_params p = *given;
    u64 devid = p.devid;
    u32 ip = (u32)p.ip;
    volatile u64 *stats = (volatile u64 *)RESPONDER_STATS;
    memset((void *)RESPONDER_STATS, 0, 64);
    waits = wakes = 0;
    s64 version = hypercall(HC_NEGOTIATE, ABI_VERSION, ABI_VERSION, 0);
    s64 r = hypercall(HC_DEVOPEN, devid, 0, 0);
    if (version < 0 || r < 0) fail_at(ST_OPEN, version < 0 ? version : r, 0, 0, 0);
    r = hypercall(HC_DEVSHM, devid, WINDOW, 0x100000);   /* rings and buffers; the counters stay outside */
    if (r < 0) fail_at(ST_SHM, r, 0, 0, 0);
    set_status(devid, STATUS_ACKNOWLEDGE);
    set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    r = devcall(devid, BC_GET_FEATURES, 0, 0, sizeof out_buf);
    u64 ack = le64(out_buf) & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_F_EVENT_IDX);
    u8 arg[8];
    put64(arg, ack);
    r = devcall(devid, BC_SET_FEATURES, arg, 8, 0);
    s64 status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (r < 0 || status < 0 || !(status & STATUS_FEATURES_OK) || !(ack & VIRTIO_F_VERSION_1)) fail_at(ST_FEATURES, r < 0 ? r : status, 0, (s64)ack, 0);
    put32(arg, 0);
    put32(arg + 4, 6);
    r = devcall(devid, BC_READ_CONFIG, arg, 8, sizeof out_buf);
    if (r != 6) fail_at(ST_MAC, r, 0, 0, 0);
    u64 mac = 0;
    for (int i = 0; i < 6; i++) mac = mac << 8 | out_buf[i];
    int event_idx = (ack & VIRTIO_F_EVENT_IDX) != 0;
    vq_setup(devid, &vrx, VNET_RX, VQ_RX_DESC, event_idx);
    vq_setup(devid, &vtx, VNET_TX, VQ_TX_DESC, event_idx);
    vq_callbacks(&vrx, 0);
    vq_callbacks(&vtx, 0);
    status = set_status(devid, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    if (status < 0 || !(status & STATUS_DRIVER_OK)) fail_at(ST_DRIVER_OK, status, 0, 0, 0);
    for (u16 b = 0; b < VQ_SIZE; b++) vq_add(&vrx, b, RX_BUFS + (u64)b * BUF_SIZE, BUF_SIZE, 1);
    vq_kick(&vrx);

    u16 tx_free[VQ_SIZE];
    u32 tx_free_count = 0;
    for (int b = VQ_SIZE - 1; b >= 0; b--) tx_free[tx_free_count++] = (u16)b;
    u32 id, len;
    for (;;) {                                  /* until the VMM stops the vCPU */
        int progress = 0;
        while (vq_reap(&vtx, VNET_TX, &id, &len)) tx_free[tx_free_count++] = (u16)id;
        int sent = 0, reposted = 0;
        while (vq_reap(&vrx, VNET_RX, &id, &len)) {
            const u8 *b = (const u8 *)(RX_BUFS + (u64)id * BUF_SIZE);
            stats[0]++;
            if (len > VNET_HDR && len <= BUF_SIZE) {
                if (tx_free_count == 0) {
                    stats[4]++;                 /* no tx slot: the asker will ask again */
                } else {
                    u16 slot = tx_free[tx_free_count - 1];
                    u8 *o = (u8 *)(TX_BUFS + (u64)slot * BUF_SIZE);
                    u32 n = respond(b + VNET_HDR, len - VNET_HDR, o + VNET_HDR, mac, ip, stats);
                    if (n) {
                        memset(o, 0, VNET_HDR);
                        vq_add(&vtx, slot, (u64)o, VNET_HDR + n, 0);
                        tx_free_count--;
                        sent = 1;
                    } else {
                        stats[3]++;
                    }
                }
            }
            vq_add(&vrx, (u16)id, (u64)b, BUF_SIZE, 1);
            reposted = 1;
        }
        if (sent) vq_kick(&vtx);
        if (reposted) vq_kick(&vrx);
        progress = sent | reposted;
        if (!progress) vnet_idle(MAX_WAIT_MICROS_GUEST);
    }
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
    case MODE_VENET: venet((const struct venet_params *)arg); break;
    case MODE_VIRTIO_NET: virtio_net((const struct vnet_params *)arg); break;
    case MODE_EVENTS: events((const struct events_params *)arg); break;
    case MODE_KICK_WAKE: kick_wake(arg & 0xffffffffUL, arg >> 32); break;
    case MODE_RESPONDER: responder((const struct responder_params *)arg); break;
    }
    report[0] = (s64)mode;
    finish(0xBAD, 1);
}
