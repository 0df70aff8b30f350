package dev.jvbus.connector.shm.client;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.server.ShmFixture;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.virtio.BufferList;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A multiqueue driver over the shm connector, laid out as Linux lays out virtio-net with MQ: two queue pairs
 * (rings 0..3) and the control queue after them (ring 4), two pairs enabled with MQ_VQ_PAIRS_SET on it; flows
 * from the switch arrive on both rx rings (each flow on one), frames sent on both tx rings reach the switch.
 * Nothing in the connector knows about pairs: the device takes the rings by index.
 */
class ShmMultiqueueTest {
    static final int QSIZE = 128, SLOT = 2048, HDR = 12;
    static final long MAC_A = MacAddress.parse("02:00:00:00:0a:11"), MAC_PEER = MacAddress.parse("02:00:00:00:0b:11");
    static final Duration WAIT = Duration.ofSeconds(30);

    @RegisterExtension
    final ShmFixture fx = new ShmFixture();

    @Test
    void anShmDriverSetsTwoPairsAndCarriesFramesOnBoth() throws Exception {
        Container c = fx.bus.createContainer("shm-mq");
        Device a = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(MAC_A), "queue-pairs", "2"));
        ConcurrentLinkedQueue<byte[]> peerGot = new ConcurrentLinkedQueue<>();
        SwitchPort peer = Networks.of(c).getOrCreate("default").join(new NetPort() {
            @Override public String name() { return "peer"; }

            @Override public DropReason deliver(MemorySegment f, long off, int len) {
                peerGot.add(f.asSlice(off, len).toArray(ValueLayout.JAVA_BYTE));
                return null;
            }
        });
        fx.shm.expose("shm-mq");
        try (BusClient bus = BusClient.connect(fx.socket("shm-mq"), "mq-driver");
             ClientDevice dev = bus.open(a.devid())) {
            long f = dev.negotiate(VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MAC.mask() | VirtioNetFeatures.CTRL_VQ.mask()
                    | VirtioNetFeatures.MQ.mask());
            assertThat(VirtioNetFeatures.MQ.in(f)).isTrue();
            byte[] maxPairs = dev.readConfig(VirtioNetModel.CONFIG_MAX_PAIRS, 2);
            assertThat(maxPairs[0] | maxPairs[1] << 8).isEqualTo(2);
            DriverMemory mem = dev.shareMemory("mq-" + dev.devid(), 4L << 20, 0x1000_0000L);
            List<ClientQueue> q = dev.setUpQueues(mem, QSIZE, QSIZE, QSIZE, QSIZE, 64);
            assertThat(q.get(4).index()).isEqualTo(VirtioNetModel.ctrlQueue(2));
            long[][] addrOf = new long[4][QSIZE];
            long rxBufs = mem.allocate(2L * QSIZE * SLOT, 64), txBufs = mem.allocate(2L * QSIZE * SLOT, 64), cmd = mem.allocate(64, 8);
            BufferList l = new BufferList(3);
            for (int r = 0; r <= 2; r += 2)
                for (int s = 0; s < QSIZE; s++) {
                    long buf = rxBufs + ((long) (r / 2) * QSIZE + s) * SLOT;
                    addrOf[r][q.get(r).add(l.clear().writable(buf, SLOT))] = buf;
                }
            dev.driverOk();
            assertThat(a.status().isLive()).isTrue();

            // MQ_VQ_PAIRS_SET 2 on the control queue: class 4, command 0, le16 2; the ack after.
            MemorySegment cs = mem.segment(cmd, 64);
            cs.set(ValueLayout.JAVA_BYTE, 0, (byte) 4);
            cs.set(ValueLayout.JAVA_BYTE, 1, (byte) 0);
            cs.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8, (short) 2);
            cs.set(ValueLayout.JAVA_BYTE, 16, (byte) 0xee);
            q.get(4).add(l.clear().readable(cmd, 2).readable(cmd + 8, 2).writable(cmd + 16, 1));
            q.get(4).kickIfNeeded();
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (q.get(4).pollUsed() < 0)
                if (System.nanoTime() > deadline) throw new AssertionError("the control command was not answered");
            assertThat(cs.get(ValueLayout.JAVA_BYTE, 16)).as("VIRTIO_NET_OK").isZero();

            // 32 flows from the switch: both rx rings, each flow on one.
            MemorySegment frame = MemorySegment.ofArray(new byte[64]);
            for (int i = 0; i < 32; i++) {
                ByteBuffer b = ByteBuffer.wrap((byte[]) frame.heapBase().orElseThrow());
                b.put(MacAddress.toBytes(MAC_A)).put(MacAddress.toBytes(MAC_PEER)).putShort((short) 0x0800);
                b.put((byte) 0x45).put((byte) 0).putShort((short) 50).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                        .putInt(0xc0000201).putInt(0xc0000202).putShort((short) (40_000 + i)).putShort((short) 9);
                peer.send(frame, 0, 64);
            }
            Map<Integer, Set<Integer>> seen = new HashMap<>();
            int got = 0;
            while (got < 32) {
                for (int r = 0; r <= 2; r += 2)
                    for (long e; (e = q.get(r).pollUsed()) >= 0; got++) {
                        long buf = addrOf[r][SplitVirtqueueDriver.usedId(e)];
                        int sport = Short.toUnsignedInt(mem.segment(buf + HDR + 34, 2).get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0));
                        seen.computeIfAbsent(sport, k -> new TreeSet<>()).add(r);
                    }
                if (System.nanoTime() > deadline) throw new AssertionError("received " + got + " of 32: " + a.queueStats());
                Thread.onSpinWait();
            }
            assertThat(seen.values()).allSatisfy(rings -> assertThat(rings).hasSize(1));
            assertThat(seen.values().stream().flatMap(Set::stream).distinct().sorted().toList()).containsExactly(0, 2);

            // Frames on both tx rings reach the switch.
            for (int t = 1; t <= 3; t += 2)
                for (int i = 0; i < 5; i++) {
                    long buf = txBufs + ((long) (t / 2) * QSIZE + i) * SLOT;
                    MemorySegment s = mem.segment(buf, HDR + 60);
                    s.asSlice(0, HDR).fill((byte) 0);
                    MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(MAC_PEER)), 0, s, HDR, 6);
                    MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(MAC_A)), 0, s, HDR + 6, 6);
                    s.set(ValueLayout.JAVA_SHORT_UNALIGNED, HDR + 12, (short) 0xb588);
                    q.get(t).add(l.clear().readable(buf, HDR + 60));
                    q.get(t).kickIfNeeded();
                }
            while (peerGot.size() < 10)
                if (System.nanoTime() > deadline) throw new AssertionError("the peer got " + peerGot.size() + " of 10");
            // A worker counts its buffers when it gives them back, after the switch has delivered them: wait for that.
            while ((a.queueStats().get(VirtioNetModel.txQueue(0)).buffers() < 5 || a.queueStats().get(VirtioNetModel.txQueue(1)).buffers() < 5)
                    && System.nanoTime() < deadline)
                Thread.onSpinWait();
            assertThat(a.queueStats().get(VirtioNetModel.txQueue(0)).buffers()).isEqualTo(5);
            assertThat(a.queueStats().get(VirtioNetModel.txQueue(1)).buffers()).isEqualTo(5);
        }
    }
}
