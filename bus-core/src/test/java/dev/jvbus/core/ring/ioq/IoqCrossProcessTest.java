package dev.jvbus.core.ring.ioq;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.testing.ChildJvm;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two JVM processes: this one is the driver (it owns the memfd and lays out the ring), a child
 * JVM is the device. The child maps the memfd through /proc/<pid>/fd and takes both eventfds
 * with pidfd_getfd; every sequence number must cross once and in order.
 */
class IoqCrossProcessTest {
    static final long N = 2_000_000;
    static final int COUNT = 256;

    @Test
    void twoMillionBuffersAcrossProcesses() throws Exception {
        try (TestMemory m = new TestMemory(); EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            IoqDriver drv = IoqDriver.create(0, m.memory, TestMemory.RING_A, COUNT, Notifier.of(kick), true);
            MemorySegment bufs = m.at(TestMemory.BUFS_A, (long) COUNT * IoqPump.BUF);
            long t0 = System.nanoTime();
            try (ChildJvm child = ChildJvm.start(Device.class, Long.toString(ProcessHandle.current().pid()),
                    Integer.toString(m.memfd.fd()), Integer.toString(kick.fd()), Integer.toString(call.fd()),
                    Long.toString(N));
                 SpinThenBlock wait = new SpinThenBlock(call, IoqPump.SPINS)) {
                IoqPump.produce(drv, wait, bufs, TestMemory.BUFS_A, N);
                assertThat(child.waitFor(120, TimeUnit.SECONDS)).as(child.output()).isZero();
                long nanos = System.nanoTime() - t0;
                System.out.printf("IOQ two JVMs: driver %,d buffers in %,d ms (%.2f M/s, includes child JVM start); "
                                + "kicks sent %,d suppressed %,d; producer blocks %,d lost wakeups %d%n  child: %s%n",
                        N, nanos / 1_000_000, N * 1e3 / nanos, drv.signal().signalsSent, drv.signal().signalsSuppressed,
                        wait.blocks, wait.lostWakeups, child.output().strip());
                assertThat(drv.completions).isEqualTo(N);
                assertThat(drv.signal().signalsSent).isLessThan(N / 10);
                assertThat(wait.lostWakeups).isZero();
                assertThat(child.output()).contains("lost wakeups 0");
            }
        }
    }

    /** The device in the child JVM. Exit code 0 only if every number arrived once, in order. */
    public static final class Device {
        public static void main(String[] args) throws Exception {
            long pid = Long.parseLong(args[0]);
            long n = Long.parseLong(args[4]);
            try (Arena arena = Arena.ofShared();
                 EventFd kick = EventFd.fromPeer(pid, Integer.parseInt(args[2]));
                 EventFd call = EventFd.fromPeer(pid, Integer.parseInt(args[3]));
                 SpinThenBlock wait = new SpinThenBlock(kick, IoqPump.SPINS)) {
                MemorySegment seg = Memfd.mapPeer(pid, Integer.parseInt(args[1]), TestMemory.SIZE, arena);
                GuestMemory memory = GuestMemory.of(new MemoryRegion(TestMemory.BASE, TestMemory.SIZE, seg));
                IoqDevice dev = IoqDevice.attach(0, memory, TestMemory.RING_A, COUNT, Notifier.of(call), true);
                long t0 = System.nanoTime();
                long got = IoqPump.consume(dev, wait, 0, n);
                long nanos = System.nanoTime() - t0;
                System.out.printf("device %,d buffers in order in %,d ms (%.2f M/s); completion signals sent %,d suppressed %,d; "
                                + "blocks %,d; lost wakeups %d%n", got, nanos / 1_000_000, got * 1e3 / nanos,
                        dev.signal().signalsSent, dev.signal().signalsSuppressed, wait.blocks, wait.lostWakeups);
                System.exit(got == n && dev.buffers == n ? 0 : 1);
            } catch (Throwable t) {
                t.printStackTrace(System.out);
                System.exit(2);
            }
        }
    }
}
