package dev.jvbus.connector.kvm;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.sys.Epoll;
import dev.jvbus.core.sys.EventFd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * Measures what a doorbell costs end to end: from the guest's kick (KVM_IOEVENTFD, no exit) to a host
 * thread that sleeps in epoll on the kick eventfd, as a device worker does, waking and answering. The
 * guest (mode {@link GuestProgram.Mode#KICK_WAKE}) writes a sequence number, kicks, and spins until the
 * host thread has copied the number to an echo word: the answer is a plain store the spinning guest sees
 * at once, so the time per kick is the kick-to-wake-up latency. {@link #hostBaseline} is the same
 * exchange between two host threads over an eventfd, measured the same way, for a ratio.
 *
 * <p>The device only lends its queue's doorbell: it is opened but never started, so no worker of its own
 * competes for the kick eventfd.
 */
public final class KickWakeProbe {
    private KickWakeProbe() {}

    private static final long SEQ = 0x300000L, ECHO = 0x300008L;
    private static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    /** Nanoseconds per kick, over {@code kicks} kicks of a micro-VM on {@code container} borrowing {@code device}'s queue 1. */
    public static double microVm(Container container, Device device, int kicks, Duration timeout) {
        try (MicroVm vm = MicroVm.create(container, GuestProgram.vbusGuest(), 4L << 20)) {
            MemorySegment words;
            try {
                words = vm.memory().slice(SEQ, 16);
            } catch (GuestMemoryException e) {
                throw new IllegalStateException("the probe's words are outside a 4 MiB micro-VM", e);
            }
            Answerer answerer = new Answerer(words, () -> vm.kickOf(device.devid(), 1));
            Thread t = Thread.ofPlatform().daemon().name("kick-wake-host").start(answerer);
            RunReport r;
            try {
                r = vm.run(GuestProgram.Mode.KICK_WAKE, device.devid().unsigned() | (long) kicks << 32, timeout);
            } finally {
                answerer.stop = true;
                join(t);
            }
            if (!(r instanceof RunReport.Exited e) || e.code() != 0) throw new IllegalStateException("kick-wake guest failed: " + r.describe());
            return r.stats().elapsed().toNanos() / (double) kicks;
        }
    }

    /** Nanoseconds per round: one host thread stores a number and writes the eventfd, another wakes in epoll and echoes it. */
    public static double hostBaseline(int kicks) {
        try (Arena arena = Arena.ofShared(); EventFd kick = EventFd.create()) {
            MemorySegment words = arena.allocate(16, 8);
            Answerer answerer = new Answerer(words, () -> kick);
            Thread t = Thread.ofPlatform().daemon().name("kick-wake-baseline").start(answerer);
            long start = System.nanoTime();
            try {
                for (long i = 1; i <= kicks; i++) {
                    LONG.setRelease(words, 0L, i);
                    kick.signal();
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while ((long) LONG.getAcquire(words, 8L) != i) {
                        if (System.nanoTime() > deadline) throw new IllegalStateException("the answering thread is stuck at " + i);
                        Thread.onSpinWait();
                    }
                }
                return (System.nanoTime() - start) / (double) kicks;
            } finally {
                answerer.stop = true;
                join(t);
            }
        }
    }

    /** The host thread: sleeps in epoll on the kick eventfd, drains it, copies the sequence word to the echo word. */
    private static final class Answerer implements Runnable {
        private final MemorySegment words;
        private final java.util.function.Supplier<EventFd> kick;
        volatile boolean stop;

        Answerer(MemorySegment words, java.util.function.Supplier<EventFd> kick) {
            this.words = words;
            this.kick = kick;
        }

        @Override
        public void run() {
            EventFd fd;
            while ((fd = kick.get()) == null) {   // until the guest made its doorbell
                if (stop) return;
                LockSupport.parkNanos(100_000);
            }
            try (Epoll ep = Epoll.create(1)) {
                ep.add(fd, Epoll.IN, 1);
                while (!stop) {
                    if (ep.wait(10) > 0) {
                        fd.drain();
                        LONG.setRelease(words, 8L, (long) LONG.getAcquire(words, 0L));
                    }
                }
            }
        }
    }

    private static void join(Thread t) {
        try {
            t.join(Duration.ofSeconds(30));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
