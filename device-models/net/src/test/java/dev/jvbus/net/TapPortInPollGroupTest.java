package dev.jvbus.net;

import static dev.jvbus.core.testing.TestFrames.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.TapDevice;
import dev.jvbus.core.testing.StuckDoorbell;
import dev.jvbus.core.testing.TestFrames;
import dev.jvbus.core.testing.TestNetns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A TapPort whose TAP is read by a {@link PollGroup}'s thread (the group that serves the tx queue of the device it
 * answers) instead of a reader thread of its own: what it answers, on which thread, and that it keeps the port's
 * guarantees (close never waits for ever, the fds closed exactly once and never while still read, a dead interface
 * stops only this member). The kernel behind the TAP is real, in a namespace the test makes (skipped where none can be).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS) // a hang guard only; no test asserts on time
class TapPortInPollGroupTest {
    static final byte[] KERNEL_IP = ip(192, 0, 2, 1), HOST_IP = ip(192, 0, 2, 2);
    static final byte[] HOST_MAC = localMac(0x0002);
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();

    final Arena arena = Arena.ofShared();
    final L2Switch sw = new L2Switch("tap-group-test");

    @AfterEach
    void freeFrames() {
        arena.close();
    }

    /** The test's host: records each ARP reply from the kernel with the thread that delivered it. */
    static final class Host extends TapPortTest.Host {
        final Set<String> replyThreads = ConcurrentHashMap.newKeySet();
        final AtomicInteger arpReplies = new AtomicInteger();
        /** The group's sleeps when each ARP reply came (set by the test before the write: -1 none). */
        volatile long sleepsAtWrite = -1;
        final AtomicInteger repliesWithoutASleep = new AtomicInteger();
        volatile PollGroup group;

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            byte[] f = frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE);
            if (arpOp(f) == 2 && Arrays.equals(arpSenderIp(f), KERNEL_IP)) {
                replyThreads.add(Thread.currentThread().getName());
                PollGroup g = group;
                if (g != null && sleepsAtWrite >= 0 && g.doorbellWait().sleeps() == sleepsAtWrite) repliesWithoutASleep.incrementAndGet();
                arpReplies.incrementAndGet();
            }
            return super.deliver(frame, offset, length);
        }
    }

    /**
     * A device's tx queue, played: each batch sends the frames handed to it into the switch from the group's thread
     * (as a virtio-net tx queue's poll does), so the TAP write is the group thread's own.
     */
    static final class TxQueue implements QueueService {
        final java.util.concurrent.ConcurrentLinkedQueue<byte[]> frames = new java.util.concurrent.ConcurrentLinkedQueue<>();
        final Arena arena;
        final SwitchPort port;
        final Host host;
        volatile boolean armed;

        TxQueue(Arena arena, SwitchPort port, Host host) {
            this.arena = arena;
            this.port = port;
            this.host = host;
        }

        @Override public boolean poll() {
            byte[] f = frames.poll();
            if (f == null) return false;
            MemorySegment s = arena.allocate(f.length);
            MemorySegment.copy(f, 0, s, ValueLayout.JAVA_BYTE, 0, f.length);
            host.sleepsAtWrite = host.group.doorbellWait().sleeps();
            port.send(s, 0, f.length);
            return true;
        }

        @Override public boolean hasWork() { return !frames.isEmpty(); }

        @Override public boolean armDoorbell() { armed = true; return hasWork(); }

        @Override public void disarmDoorbell() { armed = false; }
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(condition.getAsBoolean()).as(what).isTrue();
    }

    void send(SwitchPort from, byte[] frame) {
        MemorySegment f = arena.allocate(frame.length);
        MemorySegment.copy(frame, 0, f, ValueLayout.JAVA_BYTE, 0, frame.length);
        from.send(f, 0, frame.length);
    }

    TapPort tapUp(String ifname, PollGroup group) {
        TapPort tap = TapPort.open(sw, TapDevice.create(ifname, ns.namespace(), false), null, group);
        ns.address(ifname, "192.0.2.1/24");
        return tap;
    }

    static boolean threadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals(name) && t.isAlive());
    }

    /**
     * The kernel's replies come in through the group's thread, and the port starts no reader thread of its own; the
     * group serves its other member (a device's queue) beside it.
     */
    @Test
    void theGroupsThreadReadsTheTapAndThePortHasNoReaderThread() throws Exception {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (PollGroup g = new PollGroup("tap-group", DoorbellWait.Mode.ADAPTIVE); TapPort tap = tapUp("jvtapg0", g)) {
            assertThat(threadAlive("jvbus-tap:jvtapg0-reader")).as("no reader thread of its own").isFalse();
            assertThat(tap.readerAlive()).as("its reads are a live member of the group").isTrue();
            for (int i = 1; i <= 5; i++) {
                send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
                int want = i;
                await(() -> host.arpReplies.get() >= want, "the kernel's ARP reply " + i);
            }
            assertThat(host.replyThreads).as("read and delivered by the group's thread").containsExactly("tap-group");
            assertThat(tap.stats().fromKernelFrames()).isGreaterThanOrEqualTo(5);
            assertThat(tap.stats().readErrors() + tap.stats().offloadDrops()).isZero();
            assertThat(g.size()).as("the TAP's reads do not count for placement").isZero();
        } finally {
            hostPort.leave();
        }
    }

    /**
     * The point of reading the TAP in the group that writes into it: the kernel answers an ARP request in the write's
     * own context, so the reply is on the TAP when the group's write returns, and the group's next round reads it
     * without the group going to sleep and being woken for it (with a reader thread, that thread had to be woken). Of
     * 20 requests, most replies come so (a loaded kernel may defer its softirq work to ksoftirqd: then a wake-up).
     */
    @Test
    void aReplyTheKernelQueuesDuringTheGroupsOwnWriteIsReadInItsNextRoundWithoutASleep() throws Exception {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (PollGroup g = new PollGroup("tap-group", DoorbellWait.Mode.ADAPTIVE); EventFd kick = EventFd.create();
             TapPort tap = tapUp("jvtapg1", g)) {
            host.group = g;
            TxQueue tx = new TxQueue(arena, hostPort, host);
            QueueWorker txq = new QueueWorker("tx", 1, tx, List.of(kick), null, g, f -> { }).start();
            send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));   // from the test thread: warms up the neighbour entry
            await(() -> host.arpReplies.get() >= 1, "the first ARP reply");
            host.replyThreads.clear();
            int requests = 20;
            for (int i = 1; i <= requests; i++) {
                await(() -> g.doorbellWait().phase() == DoorbellWait.Phase.SLEEPING, "the group asleep");
                int before = host.arpReplies.get();
                tx.frames.add(arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
                if (tx.armed) kick.signal();
                await(() -> host.arpReplies.get() > before, "the reply to request " + i);
            }
            assertThat(host.replyThreads).containsExactly("tap-group");
            assertThat(host.repliesWithoutASleep.get()).as("replies read in the round after the write, no sleep between")
                    .isGreaterThanOrEqualTo(requests / 2);
            txq.close();
        } finally {
            hostPort.leave();
        }
    }

    /** As with a reader thread: close returns within its bound while the group is stuck delivering what it read, and the
     * TAP is closed when the group lets the member go, not before (its fd may still be read). */
    @Test
    void closeReturnsWithinItsBoundWhileTheGroupIsStuckInADeliveryAndTheTapIsClosedWhenTheGroupComesBack() throws Exception {
        try (StuckDoorbell doorbell = new StuckDoorbell(); PollGroup g = new PollGroup("tap-group", DoorbellWait.Mode.ADAPTIVE)) {
            L2SwitchTest.RingingReceiver host = new L2SwitchTest.RingingReceiver(doorbell);
            SwitchPort hostPort = sw.join(host);
            TapPort tap = tapUp("jvtapg2", g);
            try {
                host.armed = true;
                send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
                assertThat(doorbell.awaitStuck(Duration.ofSeconds(20))).as("the group's thread is stuck delivering").isTrue();

                assertThat(L2SwitchTest.onThread("close", tap::close))
                        .as("close returns within its bound though the group is stuck")
                        .succeedsWithin(TapPort.READER_STOP_BOUND.plus(Duration.ofSeconds(30)));
                assertThat(sw.ports()).containsExactly(hostPort);
                assertThat(tap.readerAlive()).as("the member was left behind").isTrue();
                assertThat(tap.device().isClosed()).as("its fd stays open while the group may still read it").isFalse();

                doorbell.release();
                await(() -> !tap.readerAlive() && tap.device().isClosed(), "back from the delivery, the group lets the member go and the TAP is closed");
                assertThat(ns.ipResult("link", "show", "jvtapg2").exit()).as("interface gone with the fd").isNotZero();
                tap.close();   // idempotent: nothing closed twice
            } finally {
                doorbell.release();
                tap.close();
                hostPort.leave();
            }
        }
    }

    /** A deleted interface ends this member's reads only (not a spin on the dead fd); the group serves its other member. */
    @Test
    void anInterfaceDeletedUnderTheTapStopsItsReadsAndTheGroupServesItsOtherMembers() throws Exception {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        AtomicLong served = new AtomicLong();
        try (PollGroup g = new PollGroup("tap-group", DoorbellWait.Mode.ADAPTIVE); EventFd kick = EventFd.create();
             TapPort tap = tapUp("jvtapg3", g)) {
            AtomicLong available = new AtomicLong();
            QueueService other = new QueueService() {
                volatile boolean armed;
                @Override public boolean poll() {
                    long a = available.get();
                    if (a == served.get()) return false;
                    served.set(a);
                    return true;
                }
                @Override public boolean hasWork() { return available.get() != served.get(); }
                @Override public boolean armDoorbell() { armed = true; return hasWork(); }
                @Override public void disarmDoorbell() { armed = false; }
            };
            QueueWorker q = new QueueWorker("q", 0, other, List.of(kick), null, g, f -> { }).start();
            ns.ip("link", "del", "jvtapg3");
            await(() -> !tap.readerAlive(), "the TAP's reads stop instead of spinning on a dead fd");
            assertThat(tap.stats().readErrors()).isEqualTo(1);
            send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
            assertThat(tap.switchPort().stats().dropped(DropReason.PORT_DOWN)).isEqualTo(1);
            for (int i = 1; i <= 3; i++) {
                available.incrementAndGet();
                kick.signal();
                long want = i;
                await(() -> served.get() == want, "the other member is still served");
            }
            assertThat(q.isAlive()).isTrue();
            q.close();
        } finally {
            hostPort.leave();
        }
    }
}
