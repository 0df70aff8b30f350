package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SequenceStream.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.testing.ChildJvm;
import java.lang.foreign.Arena;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Two real JVMs: this one is the driver (client library side), a child JVM is the device. The child
 * maps this process's memfd through /proc and takes both eventfds with pidfd_getfd.
 */
class SplitVirtqueueCrossProcessTest {
    static final long BUFFERS_TOTAL = Long.getLong("jvbus.test.splitCrossProcess", 2_000_000L);

    @ParameterizedTest(name = "eventIdx={0}")
    @ValueSource(booleans = {true, false})
    void sequenceNumbersCrossTwoProcessesOnceInOrder(boolean eventIdx) throws Exception {
        try (Memfd mem = Memfd.create("split-xproc", MEMORY_BYTES); EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            GuestMemory memory = SequenceStream.memory(mem.segment());
            SplitVirtqueueDriver drv = SplitVirtqueueDriver.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, false, Notifier.of(kick));
            Driver driver = new Driver(drv, eventIdx, call, memory);
            try (ChildJvm child = ChildJvm.start(DeviceProcess.class, Long.toString(ProcessHandle.current().pid()),
                    Integer.toString(mem.fd()), Integer.toString(kick.fd()), Integer.toString(call.fd()),
                    Long.toString(BUFFERS_TOTAL), Boolean.toString(eventIdx))) {
                long t0 = System.nanoTime();
                FutureTask<Long> p = start("split-driver", () -> driver.run(BUFFERS_TOTAL));
                assertThat(p.get(120, TimeUnit.SECONDS)).isEqualTo(BUFFERS_TOTAL);
                double secs = (System.nanoTime() - t0) / 1e9;
                assertThat(child.waitFor(30, TimeUnit.SECONDS)).as(child.output()).isZero();
                String out = child.output();
                Matcher m = Pattern.compile("consumed=(\\d+) interrupts=(\\d+) timeouts=(\\d+) lostWakeups=(\\d+)").matcher(out);
                assertThat(m.find()).as(out).isTrue();
                long consumed = Long.parseLong(m.group(1)), interrupts = Long.parseLong(m.group(2));
                assertThat(consumed).isEqualTo(BUFFERS_TOTAL);
                // A wait may time out while the other side is not running yet (the child JVM starting on a
                // busy machine); a signal that was due and never came may not.
                assertThat(Long.parseLong(m.group(4)) + driver.lostWakeups).as("lost wakeups (device, driver)").isZero();
                System.out.printf("split cross-process eventIdx=%s: %d buffers in %.2f s (incl. child start) = %.2f M buffers/s;"
                                + " kicks %d (%.0f per M), interrupts %d (%.0f per M), wait timeouts device %s driver %d%n",
                        eventIdx, BUFFERS_TOTAL, secs, BUFFERS_TOTAL / secs / 1e6, drv.kicksSent(),
                        drv.kicksSent() * 1e6 / BUFFERS_TOTAL, interrupts, interrupts * 1e6 / BUFFERS_TOTAL, m.group(3), driver.timeouts);
                assertThat(drv.kicksSent() + interrupts).isLessThan(BUFFERS_TOTAL / 10);
            }
        }
    }

    /** Child JVM: the device side. Exit code 0 and a stats line on success. */
    public static final class DeviceProcess {
        public static void main(String[] args) throws Exception {
            long pid = Long.parseLong(args[0]);
            long total = Long.parseLong(args[4]);
            boolean eventIdx = Boolean.parseBoolean(args[5]);
            try (Arena arena = Arena.ofShared();
                 EventFd kick = EventFd.fromPeer(pid, Integer.parseInt(args[2]));
                 EventFd call = EventFd.fromPeer(pid, Integer.parseInt(args[3]))) {
                GuestMemory memory = SequenceStream.memory(Memfd.mapPeer(pid, Integer.parseInt(args[1]), MEMORY_BYTES, arena));
                SplitVirtqueue q = SplitVirtqueue.create(0, QUEUE_SIZE, DESC, AVAIL, USED, memory, eventIdx, false, Notifier.of(call));
                Device device = new Device(q, kick);
                if (!device.run(total)) throw new AssertionError("device paused unexpectedly");
                System.out.println("consumed=" + device.expected + " interrupts=" + q.notificationsSent()
                        + " timeouts=" + device.timeouts + " lostWakeups=" + device.lostWakeups + " waits=" + device.waits);
            } catch (Throwable t) {
                t.printStackTrace(System.out);
                System.exit(1);
            }
        }
    }
}
