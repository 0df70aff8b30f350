package dev.jvbus.net;

import static dev.jvbus.core.testing.TestFrames.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.testing.StuckDoorbell;
import dev.jvbus.core.testing.TestFrames;
import dev.jvbus.core.testing.TestNetns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A TapPort on a switch, its TAP in a network namespace the test makes, and a test port on the
 * same switch playing a host at 192.0.2.2 (TEST-NET-1, inside the namespace only): the real kernel
 * answers its ARP and ICMP echo. Skipped, saying what is missing, where namespaces cannot be made.
 */
class TapPortTest {
    static final byte[] KERNEL_IP = ip(192, 0, 2, 1), HOST_IP = ip(192, 0, 2, 2);
    static final byte[] HOST_MAC = localMac(0x0002);
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();

    final Arena arena = Arena.ofShared();
    final L2Switch sw = new L2Switch("tap-test");

    @AfterEach
    void freeFrames() {
        arena.close();
    }

    /** The test's end of the wire: records what the switch delivers, sends raw frames from the test thread. */
    static class Host implements NetPort {
        final BlockingQueue<byte[]> received = new LinkedBlockingQueue<>();

        @Override public String name() { return "host"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            received.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            return null;
        }
    }

    void send(SwitchPort from, byte[] frame) {
        MemorySegment f = arena.allocate(frame.length);
        MemorySegment.copy(frame, 0, f, ValueLayout.JAVA_BYTE, 0, frame.length);
        from.send(f, 0, frame.length);
    }

    /**
     * Waits for the first frame matching {@code wanted}, skipping the kernel's own chatter (IPv6
     * router solicitations, MLD); answers the kernel's ARP requests for the host meanwhile.
     */
    byte[] await(Host host, SwitchPort hostPort, Predicate<byte[]> wanted, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (System.nanoTime() < deadline) {
            byte[] f = host.received.poll(100, TimeUnit.MILLISECONDS);
            if (f == null) continue;
            if (wanted.test(f)) return f;
            if (arpOp(f) == 1 && Arrays.equals(arpTargetIp(f), HOST_IP)) {
                send(hostPort, arpReply(HOST_MAC, HOST_IP, arpSenderMac(f), arpSenderIp(f)));
            }
        }
        throw new AssertionError("no " + what + " from the kernel within 5 s");
    }

    /** The host asks the kernel for its MAC (ARP) and gets the kernel's reply: the host is then known on both sides. */
    byte[] kernelArpReply(Host host, SwitchPort hostPort) throws InterruptedException {
        send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
        return await(host, hostPort, f -> arpOp(f) == 2 && Arrays.equals(arpSenderIp(f), KERNEL_IP), "ARP reply");
    }

    TapPort tapUp(String ifname) {
        TapPort tap = TapPort.create(sw, ifname, ns.namespace(), false);
        ns.address(ifname, "192.0.2.1/24");
        return tap;
    }

    @Test
    void theKernelBehindTheTapAnswersArpThenPing() throws InterruptedException {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (TapPort tap = tapUp("jvtap0")) {
            byte[] arp = kernelArpReply(host, hostPort);
            byte[] kernelMac = arpSenderMac(arp);
            assertThat(arpTargetMac(arp)).isEqualTo(HOST_MAC);
            assertThat(arpTargetIp(arp)).isEqualTo(HOST_IP);
            assertThat(dstMac(arp)).isEqualTo(HOST_MAC);
            assertThat(srcMac(arp)).isEqualTo(kernelMac);
            assertThat(ns.ip("link", "show", "jvtap0")).contains(macString(kernelMac));

            byte[] payload = "jvbus tap ping".getBytes(StandardCharsets.US_ASCII);
            // A heap frame this time: the TapPort copies it behind a header instead of using writev.
            byte[] ping = icmpEchoRequest(HOST_MAC, kernelMac, HOST_IP, KERNEL_IP, 0x4a56, 7, payload);
            hostPort.send(MemorySegment.ofArray(ping), 0, ping.length);
            byte[] reply = await(host, hostPort, f -> {
                TestFrames.Echo e = echo(f);
                return e != null && e.type() == 0;
            }, "ICMP echo reply");
            TestFrames.Echo e = echo(reply);
            assertThat(e.id()).isEqualTo(0x4a56);
            assertThat(e.seq()).isEqualTo(7);
            assertThat(e.payload()).isEqualTo(payload);
            assertThat(e.srcIp()).isEqualTo(KERNEL_IP);
            assertThat(e.dstIp()).isEqualTo(HOST_IP);
            assertThat(e.ipChecksumOk()).isTrue();
            assertThat(e.icmpChecksumOk()).isTrue();
            assertThat(dstMac(reply)).isEqualTo(HOST_MAC);

            // The switch learned the kernel's MAC on the TAP port; the tx counters agree exactly (only
            // this thread sends to the TAP).
            assertThat(sw.macTable()).containsEntry(macString(kernelMac), "tap:jvtap0");
            TapPort.TapStats ts = tap.stats();
            assertThat(ts.toKernelFrames()).isEqualTo(tap.switchPort().stats().txFrames());
            assertThat(ts.toKernelFrames()).isGreaterThanOrEqualTo(2);
            // (the reader may be forwarding more kernel chatter meanwhile, so the rx side is checked with >=)
            assertThat(ts.fromKernelFrames()).isGreaterThanOrEqualTo(2);
            assertThat(tap.switchPort().stats().rxFrames()).isGreaterThanOrEqualTo(2);
            assertThat(ts.wouldBlock() + ts.writeErrors() + ts.offloadDrops() + ts.readErrors()).isZero();
        } finally {
            hostPort.leave();
        }
    }

    /**
     * The kernel answers an ARP request in the write's own context (softirq on the way out of the write), so its reply
     * is already queued on the TAP when the write returns: the probe counts it, or, when the reader thread took it first,
     * the count of batches during whose writes the reader read does. Of several requests at least one.
     */
    @Test
    void aReplyTheKernelQueuesInTheWritesContextIsCountedAsReadableAfterTheWrites() throws InterruptedException {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (TapPort tap = tapUp("jvtap5")) {
            send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));   // before the probe is on: not measured
            await(host, hostPort, f -> arpOp(f) == 2 && Arrays.equals(arpSenderIp(f), KERNEL_IP), "ARP reply");
            assertThat(tap.stats().flushesAfterWrites()).isZero();

            tap.probeAfterWrites(true);
            int requests = 20;
            for (int i = 0; i < requests; i++) {
                send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));   // no batch: the switch flushes the TAP port after it
                await(host, hostPort, f -> arpOp(f) == 2 && Arrays.equals(arpSenderIp(f), KERNEL_IP), "ARP reply");
            }
            TapPort.TapStats ts = tap.stats();
            assertThat(ts.flushesAfterWrites()).isEqualTo(requests);
            // The reply is on the TAP before the write returns; then either the probe finds it, or the reader, woken on the
            // writer's CPU, preempted the writer on its way out of the write and took it first (which a niced test on a
            // busy machine sees often): the two counters together see it.
            assertThat(ts.readableAfterWrites() + ts.readDuringWrites()).isBetween(1L, (long) requests);
        } finally {
            hostPort.leave();
        }
    }

    @Test
    void framesToATapWhoseLinkIsDownAreDroppedAndCountedAsPortDown() {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (TapPort tap = TapPort.create(sw, "jvtap1", ns.namespace(), false)) {
            send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
            assertThat(tap.switchPort().stats().dropped(DropReason.PORT_DOWN)).isEqualTo(1);
            assertThat(tap.stats().linkDown()).isEqualTo(1);
            assertThat(tap.stats().toKernelFrames()).isZero();
        } finally {
            hostPort.leave();
        }
    }

    @Test
    void closeStopsTheReaderLeavesTheSwitchAndRemovesTheInterface() {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        TapPort tap = tapUp("jvtap2");
        assertThat(tap.readerAlive()).isTrue();
        assertThat(sw.ports()).contains(tap.switchPort());

        tap.close();
        assertThat(tap.readerAlive()).isFalse();
        assertThat(sw.ports()).containsExactly(hostPort);
        assertThat(ns.ipResult("link", "show", "jvtap2").exit()).as("interface gone with the fd").isNotZero();
        assertThat(tap.device().isClosed()).isTrue();

        // A broadcast now has no one to go to, and a stale delivery would be refused, not written to a closed fd.
        send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
        assertThat(hostPort.stats().rxFrames()).isEqualTo(1);
        assertThat(tap.deliver(arena.allocate(60), 0, 60)).isEqualTo(DropReason.PORT_DOWN);
        tap.close();   // idempotent
        hostPort.leave();
    }

    @Test
    void anInterfaceDeletedUnderThePortStopsItsReaderAndDeliveriesReportPortDown() throws InterruptedException {
        Host host = new Host();
        SwitchPort hostPort = sw.join(host);
        try (TapPort tap = tapUp("jvtap3")) {
            ns.ip("link", "del", "jvtap3");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (tap.readerAlive() && System.nanoTime() < deadline) Thread.sleep(10);
            assertThat(tap.readerAlive()).as("reader stops instead of spinning on a dead fd").isFalse();
            assertThat(tap.stats().readErrors()).isEqualTo(1);
            send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
            assertThat(tap.switchPort().stats().dropped(DropReason.PORT_DOWN)).isEqualTo(1);
        } finally {
            hostPort.leave();
        }
    }

    @Test
    void closeReturnsWithinItsBoundWhileTheReaderIsStuckInADeliveryAndTheReaderClosesTheTapWhenItComesBack() throws Exception {
        try (StuckDoorbell doorbell = new StuckDoorbell()) {
            L2SwitchTest.RingingReceiver host = new L2SwitchTest.RingingReceiver(doorbell);
            SwitchPort hostPort = sw.join(host);
            TapPort tap = tapUp("jvtap4");
            try {
                host.armed = true;
                // The kernel answers; its reply reaches the host through the TAP reader, which gets stuck in
                // the host's doorbell (as it would in a wedged device's), holding the host's port.
                send(hostPort, arpRequest(HOST_MAC, HOST_IP, KERNEL_IP));
                assertThat(doorbell.awaitStuck(Duration.ofSeconds(20))).as("the TAP reader is stuck delivering").isTrue();

                assertThat(L2SwitchTest.onThread("close", tap::close))
                        .as("close returns within its bound though the reader is stuck")
                        .succeedsWithin(TapPort.READER_STOP_BOUND.plus(Duration.ofSeconds(30)));
                assertThat(sw.ports()).containsExactly(hostPort);
                assertThat(tap.readerAlive()).as("the stuck reader was left behind").isTrue();
                assertThat(tap.device().isClosed()).as("its fds stay open while it may still read them").isFalse();

                doorbell.release();
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while ((tap.readerAlive() || !tap.device().isClosed()) && System.nanoTime() < deadline) Thread.sleep(10);
                assertThat(tap.readerAlive()).as("back from the delivery, the reader sees the port closed and stops").isFalse();
                assertThat(tap.device().isClosed()).as("and closes the TAP itself").isTrue();
                assertThat(ns.ipResult("link", "show", "jvtap4").exit()).as("interface gone with the fd").isNotZero();
            } finally {
                doorbell.release();
                tap.close();
                hostPort.leave();
            }
        }
    }

    /**
     * A host that logs, in order, each echo reply delivered to it ("D" + sequence number) and each flush ("F"),
     * and, once armed, holds the first echo reply's delivery until released (the reader stays inside it).
     */
    static final class GatedHost extends Host {
        final java.util.List<String> events = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        final java.util.concurrent.CountDownLatch inDelivery = new java.util.concurrent.CountDownLatch(1);
        final java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        volatile boolean armed;

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            DropReason r = super.deliver(frame, offset, length);
            TestFrames.Echo e = echo(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            if (e != null && e.type() == 0) {
                events.add("D" + e.seq());
                if (armed && inDelivery.getCount() > 0) {
                    inDelivery.countDown();
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException x) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
            return r;
        }

        @Override public int flush() {
            events.add("F");
            return 0;
        }
    }

    @Test
    void framesTheKernelQueuedTogetherArePublishedAtTheirReceiverWithOneFlushNotOnePerFrame() throws InterruptedException {
        GatedHost host = new GatedHost();
        SwitchPort hostPort = sw.join(host);
        try (TapPort tap = tapUp("jvtap5")) {
            byte[] kernelMac = arpSenderMac(kernelArpReply(host, hostPort));
            long repliesBefore = echoRepliesSent();   // the namespace is the class's: other tests' pings count too
            host.armed = true;
            // Each echo request's reply is queued on the TAP before our write returns (the kernel answers in the
            // writer's context). The reader takes reply 1 and stays in its delivery while replies 2 to 5 queue up.
            send(hostPort, icmpEchoRequest(HOST_MAC, kernelMac, HOST_IP, KERNEL_IP, 0x4a57, 1, new byte[8]));
            assertThat(host.inDelivery.await(20, TimeUnit.SECONDS)).as("the reader delivers reply 1").isTrue();
            for (int seq = 2; seq <= 5; seq++) send(hostPort, icmpEchoRequest(HOST_MAC, kernelMac, HOST_IP, KERNEL_IP, 0x4a57, seq, new byte[8]));
            // The kernel answers in the writer's context, so the replies are queued by now; wait for its count of
            // echo replies sent all the same, so that a kernel answering later cannot make the drain end early.
            long queued = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (echoRepliesSent() < repliesBefore + 5 && System.nanoTime() < queued) Thread.sleep(10);
            assertThat(echoRepliesSent() - repliesBefore).as("echo replies the kernel sent (IcmpMsg OutType0)").isGreaterThanOrEqualTo(5);
            host.release.countDown();

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline && !(host.events.contains("D5") && host.events.lastIndexOf("F") > host.events.indexOf("D5"))) Thread.sleep(10);
            java.util.List<String> ev = java.util.List.copyOf(host.events);
            assertThat(ev).as("all five replies delivered, then published").contains("D1", "D2", "D3", "D4", "D5");
            assertThat(ev.lastIndexOf("F")).as("a flush after the last reply: " + ev).isGreaterThan(ev.indexOf("D5"));
            // One drain, one batch: the receiver publishes once for the five, not after each.
            assertThat(ev.subList(ev.indexOf("D1"), ev.indexOf("D5"))).as("no flush between the replies of one drain: " + ev).doesNotContain("F");
        } finally {
            host.release.countDown();
            hostPort.leave();
        }
    }

    /** The namespace's count of ICMP echo replies sent ({@code /proc/net/snmp}, IcmpMsg OutType0; 0 before the first). */
    static long echoRepliesSent() throws InterruptedException {
        try {
            Process p = new ProcessBuilder(ns.get().wrap(java.util.List.of("cat", "/proc/net/snmp"))).redirectErrorStream(true).start();
            String[] lines = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).split("\n");
            p.waitFor();
            for (int i = 0; i + 1 < lines.length; i++) {
                if (!lines[i].startsWith("IcmpMsg:") || !lines[i + 1].startsWith("IcmpMsg:")) continue;
                String[] names = lines[i].split("\\s+"), values = lines[i + 1].split("\\s+");
                for (int k = 1; k < names.length && k < values.length; k++) if (names[k].equals("OutType0")) return Long.parseLong(values[k]);
            }
            return 0;
        } catch (java.io.IOException e) {
            throw new AssertionError("reading /proc/net/snmp in the test namespace", e);
        }
    }

    static String macString(byte[] mac) {
        StringBuilder b = new StringBuilder();
        for (byte x : mac) b.append(b.isEmpty() ? "" : ":").append(String.format("%02x", x & 0xff));
        return b.toString();
    }
}
