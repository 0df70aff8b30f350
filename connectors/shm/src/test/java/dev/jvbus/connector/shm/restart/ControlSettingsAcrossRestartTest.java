package dev.jvbus.connector.shm.restart;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.ClientQueue;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.client.ResilientBus;
import dev.jvbus.connector.shm.client.ResilientBus.Backoff;
import dev.jvbus.connector.shm.client.ResilientBus.State;
import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.MacAddress;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * What a driver set on its virtio-net device's control queue survives a restart of the bus, as its rings do. The bus
 * (a JVM of its own) is SIGKILLed and started again: the device there is made afresh, at its defaults, and the
 * driver, which carries on (it resumes its rings, it sets nothing up again), would find one queue pair in use,
 * promiscuous mode on and its MAC back to the operator's. With its control record ({@link VirtioNetModel#CALL_CONTROL_RECORD},
 * given again on resume) the pairs it set (MQ_VQ_PAIRS_SET), promiscuous off and all-multicast on (CTRL_RX) and the
 * MAC it set (MAC_ADDR_SET) are in force on the restarted bus, shown by what reaches it from another device there.
 */
class ControlSettingsAcrossRestartTest {
    static final int QSIZE = 128, CTRL_SIZE = 64, SLOT = 2048, HDR = 12, FRAME = 64, FLOWS = 32;
    static final long RECEIVER_BASE = 0x4000_0000L, SENDER_BASE = 0x5000_0000L;
    static final long NEW_MAC = MacAddress.parse("02:00:00:00:10:77"), MULTICAST = MacAddress.parse("01:00:5e:00:00:07");
    static final long OLD_MAC = MacAddress.parse(RestartBusProcess.RECEIVER_MAC), SENDER_MAC = MacAddress.parse(RestartBusProcess.SENDER_MAC);
    static final Duration WAIT = Duration.ofSeconds(60);

    private List<ClientQueue> rq;
    private DriverMemory rmem, smem;
    private ClientQueue tx;
    private final long[][] rxAddrOf = new long[4][QSIZE];
    private long txBuffers, cmd;
    private int txNext;
    private final BufferList list = new BufferList(3);

    @Test
    void thePairsRxModeAndMacTheDriverSetAreInForceAfterTheBusIsKilledAndStartedAgain() throws Exception {
        try (RestartHarness buses = new RestartHarness()) {
            buses.start(RestartHarness.ALL_FEATURES, "-", "receiver-pairs=2");
            try (ResilientBus bus = ResilientBus.connect(buses.socket(), "restart-control", Backoff.DEFAULT, ResilientBus.Listener.NONE)) {
                setUp(bus);
                assertThat(command(4, 0, new byte[] {2, 0})).as("MQ_VQ_PAIRS_SET 2").isZero();
                assertThat(command(0, 0, new byte[] {0})).as("RX_PROMISC off").isZero();
                assertThat(command(0, 1, new byte[] {1})).as("RX_ALLMULTI on").isZero();
                assertThat(command(1, 1, MacAddress.toBytes(NEW_MAC))).as("MAC_ADDR_SET").isZero();
                assertSettingsInForce("before the restart", buses);

                buses.kill();
                buses.start(RestartHarness.ALL_FEATURES, "-", "receiver-pairs=2");
                assertThat(bus.awaitState(State.CONNECTED, Duration.ofSeconds(120))).as(bus.state() + ": " + bus.reason()).isTrue();
                assertThat(bus.outages()).isEqualTo(1);
                assertSettingsInForce("after the restart", buses);
            } finally {
                if (rmem != null) rmem.close();
                if (smem != null) smem.close();
            }
        }
    }

    /**
     * The receiver's settings, as frames from the sender show them: flows to its MAC spread over both rx rings (two
     * pairs), a multicast frame reaches it (all-multicast), a frame to its old MAC does not (promiscuous off; the
     * switch floods it as unknown), nor does it to the sender's.
     */
    private void assertSettingsInForce(String when, RestartHarness buses) throws Exception {
        Set<Integer> rings = new TreeSet<>();
        int multicastSeen = 0, oldSeen = 0, got = 0;
        long deadline = System.nanoTime() + WAIT.toNanos();
        // The old-MAC frame goes first; the marker after it on the same tx ring is delivered after it.
        send(OLD_MAC, 1);
        send(MULTICAST, 2);
        for (int i = 0; i < FLOWS; i++) send(NEW_MAC, 1000 + i);
        while (got < FLOWS + 1) {
            for (int r = 0; r <= 2; r += 2)
                for (long e; (e = rq.get(r).pollUsed()) >= 0; ) {
                    long buf = rxAddrOf[r][SplitVirtqueueDriver.usedId(e)];
                    MemorySegment f = rmem.segment(buf, HDR + FRAME);
                    long dst = MacAddress.read(f, HDR);
                    int sport = Short.toUnsignedInt(f.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), HDR + 34));
                    if (dst == OLD_MAC) oldSeen++;
                    else if (dst == MULTICAST) multicastSeen++;
                    else rings.add(r);
                    got++;
                    rxAddrOf[r][rq.get(r).add(list.clear().writable(buf, SLOT))] = buf;
                    assertThat(sport).isPositive();
                }
            rq.get(0).kickIfNeeded();
            rq.get(2).kickIfNeeded();
            while (tx.pollUsed() >= 0) { /* the sender's buffers come back */ }
            if (System.nanoTime() > deadline)
                throw new AssertionError(when + ": received " + got + " of " + (FLOWS + 1) + " frames; bus output:\n" + buses.output());
            if (got < FLOWS + 1) rq.get(0).awaitUsed(TimeUnit.MILLISECONDS.toNanos(20));
        }
        // Every frame received is not every frame completed: the bus publishes the sender's tx completions after the
        // deliveries. A frame whose completion was not published when the bus is killed is sent again by the
        // restarted bus (this driver keeps no delivery log) and would arrive twice. Wait for the completions.
        while (tx.pollUsed() >= 0 || tx.driver().outstanding() > 0) {
            if (System.nanoTime() > deadline)
                throw new AssertionError(when + ": " + tx.driver().outstanding() + " of the sender's frames not completed; bus output:\n" + buses.output());
            tx.awaitUsed(TimeUnit.MILLISECONDS.toNanos(20));
        }
        assertThat(oldSeen).as(when + ": frames to the MAC the driver left (promiscuous off)").isZero();
        assertThat(multicastSeen).as(when + ": multicast frames (all-multicast on)").isEqualTo(1);
        assertThat(rings).as(when + ": the rx rings the flows to its MAC came on (two pairs in use)").containsExactly(0, 2);
    }

    private void setUp(ResilientBus bus) throws QueueFault {
        ClientDevice r = bus.open(RestartBusProcess.RECEIVER);
        long f = r.negotiate(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask() | VirtioNetFeatures.CTRL_VQ.mask()
                | VirtioNetFeatures.CTRL_RX.mask() | VirtioNetFeatures.CTRL_MAC_ADDR.mask() | VirtioNetFeatures.MQ.mask());
        assertThat(VirtioNetFeatures.MQ.in(f) && VirtioNetFeatures.CTRL_MAC_ADDR.in(f)).as("negotiated 0x" + Long.toHexString(f)).isTrue();
        rmem = r.shareMemory("restart-control-receiver", 4L << 20, RECEIVER_BASE);
        long record = rmem.allocate(VirtioNetModel.CONTROL_RECORD_BYTES, 8);
        r.callModelOnResume(VirtioNetModel.CALL_CONTROL_RECORD, BusCall.u64(record));
        rq = r.setUpQueues(rmem, QSIZE, QSIZE, QSIZE, QSIZE, CTRL_SIZE);
        assertThat(rq.get(4).index()).isEqualTo(VirtioNetModel.ctrlQueue(2));
        long rxBuffers = rmem.allocate(2L * QSIZE * SLOT, 64);
        cmd = rmem.allocate(64, 8);
        for (int r2 = 0; r2 <= 2; r2 += 2)
            for (int s = 0; s < QSIZE; s++) {
                long buf = rxBuffers + ((long) (r2 / 2) * QSIZE + s) * SLOT;
                rxAddrOf[r2][rq.get(r2).add(list.clear().writable(buf, SLOT))] = buf;
            }
        r.driverOk();
        ClientDevice s = bus.open(RestartBusProcess.SENDER);
        s.negotiate(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask());
        smem = s.shareMemory("restart-control-sender", 1 << 20, SENDER_BASE);
        tx = s.setUpQueues(smem, QSIZE, QSIZE).get(1);
        txBuffers = smem.allocate((long) QSIZE * SLOT, 64);
        s.driverOk();
    }

    /** One control command on the receiver's control queue: class, command, data; the ack (0 OK). */
    private int command(int cls, int command, byte[] data) throws QueueFault {
        MemorySegment c = rmem.segment(cmd, 64);
        c.fill((byte) 0);
        c.set(ValueLayout.JAVA_BYTE, 0, (byte) cls);
        c.set(ValueLayout.JAVA_BYTE, 1, (byte) command);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, c, 8, data.length);
        c.set(ValueLayout.JAVA_BYTE, 32, (byte) 0xee);
        ClientQueue ctrl = rq.get(4);
        ctrl.add(list.clear().readable(cmd, 2).readable(cmd + 8, data.length).writable(cmd + 32, 1));
        ctrl.kickIfNeeded();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (ctrl.pollUsed() < 0)
            if (System.nanoTime() > deadline) throw new AssertionError("control command " + cls + "/" + command + " not answered");
        return c.get(ValueLayout.JAVA_BYTE, 32);
    }

    /** A UDP/IPv4 frame from the sender to {@code dst}, of the flow with source port {@code sport}. */
    private void send(long dst, int sport) throws QueueFault {
        long at = txBuffers + (long) (txNext++ % QSIZE) * SLOT;
        MemorySegment f = smem.segment(at, HDR + FRAME);
        f.fill((byte) 0);
        MacAddress.write(f, HDR, dst);
        MacAddress.write(f, HDR + 6, SENDER_MAC);
        var be16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
        var be32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
        f.set(be16, HDR + 12, (short) 0x0800);
        f.set(ValueLayout.JAVA_BYTE, HDR + 14, (byte) 0x45);
        f.set(be16, HDR + 16, (short) 50);
        f.set(ValueLayout.JAVA_BYTE, HDR + 22, (byte) 64);
        f.set(ValueLayout.JAVA_BYTE, HDR + 23, (byte) 17);
        f.set(be32, HDR + 26, 0xc0000201);
        f.set(be32, HDR + 30, 0xc0000202);
        f.set(be16, HDR + 34, (short) sport);
        f.set(be16, HDR + 36, (short) 9);
        if (tx.add(list.clear().readable(at, HDR + FRAME)) < 0) throw new IllegalStateException("the sender's tx ring is full");
        tx.kickIfNeeded();
    }
}
