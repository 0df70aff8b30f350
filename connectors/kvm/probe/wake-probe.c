/*
 * wake-probe: how fast does a waiting vCPU resume when the bus signals it? Two ways, on this host's KVM,
 * measured by a throwaway C VMM so that Java costs are left out (HYPERCALLS.md, "Signals to the guest"):
 *
 *   irqfd  the guest runs at CPL0 (emulated instruction by instruction on kvm_pvm), halts with interrupts
 *          on; an in-kernel irqchip, an MSI route and KVM_IRQFD inject vector 0x40 when the VMM's other
 *          thread writes the eventfd; the handler sends the LAPIC EOI and reports with a port write.
 *   wait   the guest runs at CPL3 (native) and "halts" with a port write the VMM answers by blocking in
 *          poll() on the eventfd; the other thread writes it; the VMM re-enters, the guest reports with a
 *          port write. This is the WAIT hypercall of connectors/kvm.
 *   irqfd3 irqfd for a CPL3 guest, which cannot hlt: it enters a CPL0 gate (int 0x81, stack from the TSS) that
 *          halts, and the device interrupt's handler returns to CPL3 with sysexit. On kvm_pvm this ends in
 *          KVM_EXIT_SHUTDOWN at the int: the reason WAIT is the scheme (HYPERCALLS.md).
 *
 * Each sample: the signalling thread sleeps 2 ms (the guest is asleep by then), notes t0, writes the eventfd;
 * the vCPU thread notes t1 at the guest's report exit. Prints min / median / p90 of t1 - t0 over N samples.
 *
 * Build and run (root, /dev/kvm):  gcc -O2 -pthread -o /tmp/wake-probe probe/wake-probe.c && /tmp/wake-probe 100 [irqfd|wait|irqfd3]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (4UL << 20)
#define PORT_WOKE 0x512
#define PORT_WAIT 0x513
#define PORT_READY 0x514
#define VECTOR 0x40

/* Guest code, copied into guest memory at 0x10000; only relative jumps, so it runs anywhere. */
extern const unsigned char irq_guest[], irq_handler[], irq_guest_end[], wait_guest[], wait_guest_end[];
extern const unsigned char irq3_guest[], irq3_sleep[], irq3_handler[], irq3_guest_end[];
__asm__(
    ".pushsection .rodata\n"
    ".globl irq_guest, irq_handler, irq_guest_end, wait_guest, wait_guest_end\n"
    "irq_guest:\n"
    "  movabs $0x80000, %rsp\n"
    "  mov $0x514, %dx\n"
    "  out %al, %dx\n"
    "  sti\n"
    "1: hlt\n"
    "  jmp 1b\n"
    "irq_handler:\n"
    "  movabs $0xfee000b0, %rax\n"
    "  movl $0, (%rax)\n"            /* LAPIC EOI */
    "  mov $0x512, %dx\n"
    "  out %al, %dx\n"
    "  movabs $0x80000, %rsp\n"      /* drop the frame: no iret (the emulator has none) */
    "  sti\n"
    "  hlt\n"
    "  jmp 1b\n"
    "irq_guest_end:\n"
    "wait_guest:\n"
    "  mov $0x514, %dx\n"
    "  out %al, %dx\n"
    "2: mov $0x513, %dx\n"
    "  out %al, %dx\n"
    "  mov $0x512, %dx\n"
    "  out %al, %dx\n"
    "  jmp 2b\n"
    "wait_guest_end:\n"
    /* irqfd for a CPL3 guest: it cannot hlt, so it sleeps through a CPL0 gate (int 0x81) that halts, and the
       device interrupt's handler returns it to CPL3 with sysexit (KVM's emulator has no iret and no far return
       to an outer ring). */
    "irq3_guest:\n"
    "  mov $0x514, %dx\n"
    "  out %al, %dx\n"
    "3: int $0x81\n"
    "  mov $0x512, %dx\n"
    "  out %al, %dx\n"
    "  jmp 3b\n"
    "irq3_sleep:\n"
    "  sti\n"
    "  hlt\n"
    "  jmp irq3_sleep\n"
    "irq3_handler:\n"
    "  movabs $0xfee000b0, %rax\n"
    "  movl $0, (%rax)\n"
    "  add $40, %rsp\n"              /* the device interrupt's frame; the int 0x81 frame is next */
    "  mov (%rsp), %rdx\n"           /* user rip */
    "  mov 24(%rsp), %rcx\n"         /* user rsp */
    "  add $40, %rsp\n"
    "  sysexitq\n"
    "irq3_guest_end:\n"
    ".popsection\n");

static void die(const char *what) { perror(what); exit(1); }
static long xioctl(int fd, unsigned long req, void *arg) {
    long r = ioctl(fd, req, arg);
    if (r < 0) { fprintf(stderr, "ioctl 0x%lx: %s\n", req, strerror(errno)); exit(1); }
    return r;
}
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000UL + ts.tv_nsec;
}

struct vm {
    int vm, vcpu, efd;
    struct kvm_run *run;
    uint8_t *mem;
    int wait_mode;
    sem_t ready, woke;
    volatile uint64_t t1;
    volatile int failed;
};

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, int code) {
    s->base = 0; s->limit = 0xffffffff; s->selector = sel; s->type = type; s->present = 1; s->dpl = dpl;
    s->db = code ? 0 : 1; s->s = 1; s->l = code ? 1 : 0; s->g = 1; s->avl = 0; s->unusable = 0;
}

/* mode: 0 irqfd (CPL0 guest), 1 wait (CPL3 guest), 2 irqfd for a CPL3 guest through a CPL0 gate */
static void setup(struct vm *v, int mode) {
    int cpl3 = mode == 1;
    int gate = mode == 2;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    v->vm = xioctl(kvm, KVM_CREATE_VM, 0);
    v->mem = mmap(0, MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (v->mem == MAP_FAILED) die("mmap");
    struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = MEM, .userspace_addr = (uint64_t)v->mem};
    xioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region);
    v->efd = eventfd(0, EFD_CLOEXEC);
    if (mode != 1) xioctl(v->vm, KVM_CREATE_IRQCHIP, 0);
    v->vcpu = xioctl(v->vm, KVM_CREATE_VCPU, 0);
    int size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    v->run = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
    if (v->run == MAP_FAILED) die("mmap kvm_run");

    uint64_t *gdt = (uint64_t *)(v->mem + 0x1000), *pml4 = (uint64_t *)(v->mem + 0x2000), *pdpt = (uint64_t *)(v->mem + 0x3000),
             *pd = (uint64_t *)(v->mem + 0x4000), *pd3 = (uint64_t *)(v->mem + 0x5000);
    uint64_t u = mode != 0 ? 4 : 0;
    gdt[1] = 0x00AF9A000000FFFFUL;   /* 0x08 kernel code 64 */
    gdt[2] = 0x00CF92000000FFFFUL;   /* 0x10 kernel data */
    gdt[3] = 0x00AFFB000000FFFFUL;   /* 0x1b user code 64 */
    gdt[4] = 0x00CFF3000000FFFFUL;   /* 0x23 user data */
    gdt[5] = 0x00AFFB000000FFFFUL;   /* 0x2b user code 64: SYSENTER_CS (0x08) + 32, for sysexit */
    gdt[6] = 0x00CFF3000000FFFFUL;   /* 0x33 user data: SYSENTER_CS + 40 */
    /* 0x38: a 64-bit TSS at 0x7000 (RSP0 = 0x90000, the kernel stack an int from CPL3 switches to) */
    /* limit 0x2068: the I/O bitmap follows (all ports allowed), in case ports are checked against it despite IOPL 3 */
    gdt[7] = 0x0000890000002068UL | (0x7000UL & 0xffffff) << 16;
    gdt[8] = 0;
    *(uint64_t *)(v->mem + 0x7000 + 4) = 0x90000;
    *(uint16_t *)(v->mem + 0x7000 + 0x66) = 0x68;
    v->mem[0x7000 + 0x68 + 0x2000] = 0xff;
    pml4[0] = 0x3000 | 3 | u;
    pdpt[0] = 0x4000 | 3 | u;
    pd[0] = 0x000000 | 0x83 | u;
    pd[1] = 0x200000 | 0x83 | u;
    pdpt[3] = 0x5000 | 3;                              /* 3..4 GiB: the LAPIC page, uncached */
    pd3[(0xFEE00000UL - 0xC0000000UL) >> 21] = 0xFEE00000UL | 0x83 | 0x10;

    const unsigned char *code = gate ? irq3_guest : cpl3 ? wait_guest : irq_guest;
    const unsigned char *end = gate ? irq3_guest_end : cpl3 ? wait_guest_end : irq_guest_end;
    memcpy(v->mem + 0x10000, code, end - code);
    if (gate) {
        uint64_t hs[2] = {0x10000 + (irq3_sleep - irq3_guest), 0x10000 + (irq3_handler - irq3_guest)};
        int vec[2] = {0x81, VECTOR};
        for (int k = 0; k < 2; k++) {
            uint8_t *e = v->mem + 0x6000 + 16 * vec[k];
            *(uint16_t *)(e + 0) = hs[k] & 0xffff;
            *(uint16_t *)(e + 2) = 0x08;
            e[4] = 0;
            e[5] = k == 0 ? 0xEE : 0x8E;   /* the gate: DPL3, so CPL3 may int to it */
            *(uint16_t *)(e + 6) = (hs[k] >> 16) & 0xffff;
            *(uint32_t *)(e + 8) = hs[k] >> 32;
        }
    } else if (!cpl3) {                                       /* IDT at 0x6000: vector 0x40 -> the handler, interrupt gate, DPL0 */
        uint64_t h = 0x10000 + (irq_handler - irq_guest);
        uint8_t *e = v->mem + 0x6000 + 16 * VECTOR;
        *(uint16_t *)(e + 0) = h & 0xffff;
        *(uint16_t *)(e + 2) = 0x08;
        e[4] = 0;
        e[5] = 0x8E;
        *(uint16_t *)(e + 6) = (h >> 16) & 0xffff;
        *(uint32_t *)(e + 8) = h >> 32;
    }

    struct kvm_sregs s;
    xioctl(v->vcpu, KVM_GET_SREGS, &s);
    if (gate) {
        seg(&s.cs, 0x2b, 0xb, 3, 1);
        seg(&s.ds, 0x33, 3, 3, 0); s.es = s.fs = s.gs = s.ss = s.ds;
        s.idt.base = 0x6000; s.idt.limit = 0xfff;
        s.tr.base = 0x7000; s.tr.limit = 0x2068; s.tr.selector = 0x38; s.tr.type = 0xb; s.tr.present = 1; s.tr.s = 0;
        s.tr.dpl = 0; s.tr.g = 0; s.tr.l = 0; s.tr.db = 0; s.tr.unusable = 0;
    } else if (cpl3) {
        seg(&s.cs, 0x1b, 0xb, 3, 1);
        seg(&s.ds, 0x23, 3, 3, 0); s.es = s.fs = s.gs = s.ss = s.ds;
    } else {
        seg(&s.cs, 0x08, 0xb, 0, 1);
        seg(&s.ds, 0x10, 3, 0, 0); s.es = s.fs = s.gs = s.ss = s.ds;
        s.idt.base = 0x6000; s.idt.limit = 0xfff;
    }
    s.gdt.base = 0x1000; s.gdt.limit = 9 * 8 - 1;
    s.cr0 = 0x80050033UL;   /* PG, AM, WP, NE, ET, MP, PE */
    s.cr3 = 0x2000;
    s.cr4 = 0x20;           /* PAE */
    s.efer = 0x500;         /* LME, LMA */
    xioctl(v->vcpu, KVM_SET_SREGS, &s);
    struct kvm_regs r;
    memset(&r, 0, sizeof r);
    r.rip = 0x10000;
    r.rsp = 0x80000;
    r.rflags = 2 | (mode != 0 ? 0x3000 : 0);
    xioctl(v->vcpu, KVM_SET_REGS, &r);
    if (gate) {
        struct { struct kvm_msrs m; struct kvm_msr_entry e[1]; } msrs;
        memset(&msrs, 0, sizeof msrs);
        msrs.m.nmsrs = 1;
        msrs.e[0].index = 0x174;   /* IA32_SYSENTER_CS */
        msrs.e[0].data = 0x08;
        xioctl(v->vcpu, KVM_SET_MSRS, &msrs);
    }

    if (mode != 1) {
        /* LAPIC on (SVR), then one MSI route to vector 0x40 on APIC 0, fed by the eventfd. */
        struct kvm_lapic_state l;
        xioctl(v->vcpu, KVM_GET_LAPIC, &l);
        *(uint32_t *)(l.regs + 0xF0) = 0x1FF;
        *(uint32_t *)(l.regs + 0x80) = 0;
        xioctl(v->vcpu, KVM_SET_LAPIC, &l);
        struct { struct kvm_irq_routing r; struct kvm_irq_routing_entry e[1]; } rt;
        memset(&rt, 0, sizeof rt);
        rt.r.nr = 1;
        rt.e[0].gsi = 1;
        rt.e[0].type = KVM_IRQ_ROUTING_MSI;
        rt.e[0].u.msi.address_lo = 0xFEE00000;
        rt.e[0].u.msi.data = VECTOR;
        xioctl(v->vm, KVM_SET_GSI_ROUTING, &rt);
        struct kvm_irqfd irqfd = {.fd = v->efd, .gsi = 1};
        xioctl(v->vm, KVM_IRQFD, &irqfd);
    }
    v->wait_mode = cpl3;
    sem_init(&v->ready, 0, 0);
    sem_init(&v->woke, 0, 0);
}

static void *vcpu_thread(void *arg) {
    struct vm *v = arg;
    for (;;) {
        if (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) continue;
            perror("KVM_RUN");
            break;
        }
        if (v->run->exit_reason != KVM_EXIT_IO) {
            struct kvm_regs regs;
            ioctl(v->vcpu, KVM_GET_REGS, &regs);
            fprintf(stderr, "exit %u (internal error suberror %u) at rip 0x%llx\n", v->run->exit_reason,
                    v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? v->run->internal.suberror : 0, regs.rip);
            break;
        }
        switch (v->run->io.port) {
        case PORT_READY: sem_post(&v->ready); break;
        case PORT_WOKE: v->t1 = now_ns(); sem_post(&v->woke); break;
        case PORT_WAIT: {
            struct pollfd p = {.fd = v->efd, .events = POLLIN};
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
            uint64_t c;
            if (read(v->efd, &c, 8) != 8) perror("read eventfd");
            break;
        }
        default: fprintf(stderr, "port 0x%x\n", v->run->io.port); goto out;
        }
    }
out:
    v->failed = 1;
    sem_post(&v->ready);
    sem_post(&v->woke);
    return 0;
}

static int cmp(const void *a, const void *b) { uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b; return x < y ? -1 : x > y; }

static void measure(const char *name, int mode, int n) {
    struct vm *v = calloc(1, sizeof *v);   /* never freed: its vCPU thread stays (asleep) until the process ends */
    setup(v, mode);
    pthread_t t;
    pthread_create(&t, 0, vcpu_thread, v);
    sem_wait(&v->ready);
    if (v->failed) { printf("%-6s: the guest did not start\n", name); return; }
    uint64_t *lat = calloc(n, sizeof *lat);
    int got = 0;
    for (int i = 0; i < n; i++) {
        usleep(2000);
        uint64_t t0 = now_ns(), one = 1;
        if (write(v->efd, &one, 8) != 8) die("write eventfd");
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        if (sem_timedwait(&v->woke, &dl) < 0 || v->failed) { printf("%-6s: no wake-up for sample %d\n", name, i); break; }
        lat[got++] = v->t1 - t0;
    }
    if (got) {
        qsort(lat, got, sizeof *lat, cmp);
        printf("%-6s: %d wakes, min %.1f us, median %.1f us, p90 %.1f us\n", name, got, lat[0] / 1e3, lat[got / 2] / 1e3,
               lat[got * 9 / 10] / 1e3);
    }
    free(lat);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    const char *only = argc > 2 ? argv[2] : "";
    for (int round = 0; round < 2; round++) {   /* alternate, so a load change hits both */
        if (!*only || !strcmp(only, "irqfd")) measure("irqfd", 0, n);
        if (!*only || !strcmp(only, "wait")) measure("wait", 1, n);
        if (!*only || !strcmp(only, "irqfd3")) measure("irqfd3", 2, n);
    }
    return 0;
}
