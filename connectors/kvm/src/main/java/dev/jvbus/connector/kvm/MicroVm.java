package dev.jvbus.connector.kvm;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.core.sys.KvmVcpu;
import dev.jvbus.core.sys.KvmVcpu.Register;
import dev.jvbus.core.sys.KvmVm;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A micro-VM attached to one container: one vCPU in 64-bit user mode running a guest program that
 * talks to the bus by hypercalls (HYPERCALLS.md), decoded in that container's devid namespace.
 *
 * <p>Guest memory is one sealed memfd mapped into this process; KVM is given that mapping as the
 * guest's physical memory and the bus reads the same pages through {@link #memory()}, a
 * {@link GuestMemory} of one region at guest address 0.
 *
 * <p>{@link #run} runs the vCPU on its own platform thread (it sits in KVM_RUN, a native call that
 * would pin a virtual thread's carrier) and waits for it with a timeout. A guest that never exits
 * to the VMM (a spinning loop runs natively at CPL3 and never comes back by itself) is stopped
 * with {@code immediate_exit} and a signal, and reported as {@link RunReport.TimedOut}.
 *
 * <p>Every fd (the VM, the vCPU, the memfd) has one owner here and is closed once, by {@link #close()}.
 */
public final class MicroVm implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(MicroVm.class.getName());
    /** How long a vCPU thread gets to come back after it was asked to stop; then it is reported stuck. */
    static final Duration STOP_GRACE = Duration.ofSeconds(10);
    private static final Duration KICK_INTERVAL = Duration.ofMillis(20);
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final Container container;
    private final String name;
    private final Memfd memfd;
    private final KvmVm vm;
    private final KvmVcpu vcpu;
    private final GuestMemory memory;
    private final Hypercalls hypercalls;
    private final AtomicBoolean ran = new AtomicBoolean();
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Set when the run thread is to stop at its next exit (timeout or close). */
    private volatile boolean stopping;
    /** The run thread, while it runs. */
    private volatile Thread runThread;
    /** True if a run thread never came back: its vCPU is then not closed under it. */
    private volatile boolean vcpuStuck;

    private MicroVm(Container container, String name, Memfd memfd, KvmVm vm, KvmVcpu vcpu) {
        this.container = container;
        this.name = name;
        this.memfd = memfd;
        this.vm = vm;
        this.vcpu = vcpu;
        this.memory = GuestMemory.of(new MemoryRegion(0, memfd.size(), memfd.segment()));
        this.hypercalls = new Hypercalls(container, memory, vm, "micro-VM '" + name + "'");
    }

    /**
     * Builds a micro-VM for {@code container} with {@code memoryBytes} of guest memory (a multiple of
     * 2 MiB) and {@code program} loaded at {@link GuestLayout#PROGRAM}. Nothing runs until {@link #run}.
     *
     * @throws dev.jvbus.core.sys.Errno.SysException if KVM refuses (no device, no permission, no memory)
     */
    public static MicroVm create(Container container, GuestProgram program, long memoryBytes) {
        Objects.requireNonNull(container);
        GuestLayout.checkMemorySize(memoryBytes);
        String name = container.name() + "-vm";
        List<AutoCloseable> made = new ArrayList<>();
        try (Kvm kvm = Kvm.open()) {         // the VM holds KVM itself; /dev/kvm is not needed after this
            KvmVm vm = kvm.createVm();
            made.add(vm);
            Memfd memfd = Memfd.create("jvbus-" + name, memoryBytes);
            made.add(memfd);
            GuestLayout.prepare(memfd.segment(), program);
            vm.mapMemory(0, 0, memfd.segment());
            KvmVcpu vcpu = vm.createVcpu(0);
            made.add(vcpu);
            return new MicroVm(container, name, memfd, vm, vcpu);
        } catch (RuntimeException e) {
            for (int i = made.size() - 1; i >= 0; i--) {
                try {
                    made.get(i).close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    public Container container() { return container; }

    /** The guest's memory as the bus sees it: the same pages KVM gives the guest. */
    public GuestMemory memory() { return memory; }

    /**
     * Writes {@code words} (little-endian 64-bit) at {@link GuestLayout#PARAMS}, where a guest mode that
     * needs more than two arguments reads them; before {@link #run}, since the guest reads them once.
     */
    public void writeParameters(long... words) {
        if (ran.get()) throw new IllegalStateException("micro-VM '" + name + "' already ran; parameters are written before the run");
        if (words.length > GuestLayout.MAX_PARAMS)
            throw new IllegalArgumentException(words.length + " parameter words; the page holds " + GuestLayout.MAX_PARAMS);
        MemorySegment page = memfd.segment().asSlice(GuestLayout.PARAMS, 8L * GuestLayout.MAX_PARAMS);
        page.fill((byte) 0);
        for (int i = 0; i < words.length; i++) page.set(LE_LONG, 8L * i, words[i]);
    }

    /**
     * Runs the guest once, from its entry point with {@code mode} and {@code arg} as its two arguments,
     * until it makes the EXIT hypercall, faults, or runs past {@code timeout}. The calling thread waits;
     * the vCPU runs on a thread of its own.
     *
     * @throws IllegalStateException if this micro-VM already ran (a guest is entered once)
     */
    public RunReport run(GuestProgram.Mode mode, long arg, Duration timeout) {
        if (closed.get()) throw new IllegalStateException("micro-VM '" + name + "' is closed");
        if (!ran.compareAndSet(false, true)) throw new IllegalStateException("micro-VM '" + name + "' already ran; create another");
        vcpu.enterUserMode(GuestLayout.entry(mode.value, arg));
        RunReport[] outcome = new RunReport[1];
        Thread t = Thread.ofPlatform().daemon().name(name + "-vcpu0").unstarted(() -> outcome[0] = runLoop());
        runThread = t;
        t.start();
        try {
            boolean finished = t.join(timeout);
            if (!finished) {
                stopping = true;
                finished = stop(t);
                if (!finished) {
                    vcpuStuck = true;
                    LOG.severe(() -> name + ": the vCPU thread did not leave KVM_RUN within " + STOP_GRACE.toSeconds()
                            + " s of being signalled; its kvm_run page and fd stay open");
                    return new RunReport.TimedOut(timeout, 0, false, new RunReport.Stats(-1, -1, -1, timeout.plus(STOP_GRACE)));
                }
                RunReport r = outcome[0];
                // The run thread saw the stop request; say it was the timeout rather than a plain interruption.
                if (r instanceof RunReport.TimedOut tr) return new RunReport.TimedOut(timeout, tr.rip(), true, tr.stats());
                return r;
            }
            return outcome[0];
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stopping = true;
            if (!stop(t)) vcpuStuck = true;
            throw new IllegalStateException("interrupted while micro-VM '" + name + "' ran; it was stopped", e);
        } finally {
            runThread = null;
        }
    }

    /** Kicks the vCPU until its thread ends or {@link #STOP_GRACE} passes; true if it ended. */
    private boolean stop(Thread t) {
        long deadline = System.nanoTime() + STOP_GRACE.toNanos();
        boolean interrupted = false;
        try {
            while (true) {
                vcpu.requestExit();
                try {
                    // run() publishes its thread just before starting it: a close() right after a start may find it
                    // not started yet, which join refuses (IllegalThreadStateException); it starts in a moment.
                    if (t.getState() == Thread.State.NEW) Thread.sleep(KICK_INTERVAL);
                    else if (t.join(KICK_INTERVAL)) return true;
                } catch (InterruptedException e) {
                    interrupted = true;   // finish stopping first: the vCPU must not outlive its resources
                }
                if (System.nanoTime() - deadline > 0) return false;
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /** The vCPU thread: KVM_RUN, handle the exit, again. */
    private RunReport runLoop() {
        long start = System.nanoTime();
        long calls = 0, stray = 0;
        try {
            while (true) {
                int exit = vcpu.run();
                switch (exit) {
                    case KvmVcpu.EXIT_IO -> {
                        if (isHypercall()) {
                            calls++;
                            int verb = (int) vcpu.ioData();
                            long a0 = vcpu.register(Register.RDI), a1 = vcpu.register(Register.RSI), a2 = vcpu.register(Register.RCX);
                            if (verb == HypercallAbi.EXIT) return exited(a0, a1, a2, stats(calls, stray, start));
                            // WAIT sleeps, so it is served outside the decoder's lock; it ends early when the run is to stop.
                            vcpu.setRegister(Register.RAX, verb == HypercallAbi.WAIT ? hypercalls.await(a0, () -> stopping)
                                                                                   : hypercalls.call(verb, a0, a1, a2));
                        } else {
                            // Not our port (or not a 32-bit write): no device there. Reads float high, as on a real bus.
                            stray++;
                            if (vcpu.ioDirection() == KvmVcpu.IO_IN) vcpu.setIoData(-1L);
                        }
                    }
                    case KvmVcpu.EXIT_INTR -> {
                        if (stopping) return new RunReport.TimedOut(Duration.ZERO, vcpu.register(Register.RIP), true, stats(calls, stray, start));
                        // A stray signal: go on.
                    }
                    default -> {
                        return new RunReport.Faulted(KvmVcpu.exitName(exit),
                                exit == KvmVcpu.EXIT_INTERNAL_ERROR || exit == KvmVcpu.EXIT_FAIL_ENTRY ? vcpu.exitDetail() : 0,
                                vcpu.register(Register.RIP), stats(calls, stray, start));
                    }
                }
            }
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, name + ": KVM_RUN failed", e);
            return new RunReport.Faulted("KVM_RUN failure: " + e.getMessage(), 0, vcpu.register(Register.RIP), stats(calls, stray, start));
        }
    }

    private boolean isHypercall() {
        return vcpu.ioPort() == HypercallAbi.PORT && vcpu.ioDirection() == KvmVcpu.IO_OUT && vcpu.ioSize() == 4 && vcpu.ioCount() == 1;
    }

    private RunReport.Stats stats(long calls, long stray, long start) {
        return new RunReport.Stats(calls, hypercalls.refused(), stray, Duration.ofNanos(System.nanoTime() - start));
    }

    /** The EXIT hypercall: rdi = code, rsi = report address, rcx = report length (whole 64-bit words). */
    private RunReport exited(long code, long address, long length, RunReport.Stats stats) {
        if (length < 0 || length > HypercallAbi.MAX_REPORT || length % 8 != 0)
            return new RunReport.Exited(code, List.of(), "report length " + Long.toUnsignedString(length)
                    + " is not whole 64-bit words up to " + HypercallAbi.MAX_REPORT + " bytes", stats);
        List<Long> words = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment copy = a.allocate(Math.max(length, 8), 8);
            memory.copyFromGuest(address, copy, 0, length);     // read once, bounds-checked
            for (long i = 0; i < length; i += 8) words.add(copy.get(ValueLayout.JAVA_LONG, i));
        } catch (GuestMemoryException e) {
            return new RunReport.Exited(code, List.of(), "report block: " + e.getMessage(), stats);
        }
        return new RunReport.Exited(code, words, "", stats);
    }

    /** Kicks that reached a queue's doorbell since the last call (KVM_IOEVENTFD: without an exit to the VMM). */
    long drainKicks(dev.jvbus.core.bus.DevId devid, int queue) { return hypercalls.drainKicks(devid, queue); }

    /** The kick eventfd of a queue's doorbell, once the guest made it (SHMSIGNAL); null before. Owned by this VM. */
    dev.jvbus.core.sys.EventFd kickOf(dev.jvbus.core.bus.DevId devid, int queue) { return hypercalls.kick(devid, queue); }

    /** Bus events the guest's ring had no room for. */
    public int lostEvents() { return hypercalls.lostEvents(); }

    /** WAIT hypercalls served so far. */
    public long waits() { return hypercalls.waits(); }

    /** The features in force on each device the guest holds now (0 until it negotiated). */
    public java.util.Map<dev.jvbus.core.bus.DevId, Long> negotiatedFeatures() { return hypercalls.negotiated(); }

    /** Devices the guest holds open now. */
    public int openDevices() { return hypercalls.openCount(); }

    /** What the last refused hypercall was refused for ("" if none was). */
    public String lastRefusal() { return hypercalls.lastRefusal(); }

    /**
     * Stops the guest if it runs, detaches its devices, and closes the vCPU, the VM and the guest
     * memory, each once. A vCPU thread that never came back keeps its vCPU (see {@link RunReport.TimedOut}).
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        Thread t = runThread;
        if (t != null) {
            stopping = true;
            if (!stop(t)) vcpuStuck = true;
        }
        hypercalls.close();
        if (!vcpuStuck) vcpu.close();
        vm.close();
        // KVM still maps these pages into a stuck vCPU's VM, but from its own reference; unmapping ours is safe.
        if (!vcpuStuck) memfd.close();
    }

    @Override
    public String toString() {
        return "MicroVm[" + name + ", " + (memfd.size() >> 20) + " MiB]";
    }
}
