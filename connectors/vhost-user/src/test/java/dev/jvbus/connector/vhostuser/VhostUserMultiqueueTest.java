package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A multiqueue vhost-user session as QEMU 7.2 with {@code queues=2} runs it: one connection, one vhost device per
 * queue pair, each sending its own SET_FEATURES and ADD_MEM_REG of the same region, then its two rings (ring
 * indices are the device's: pair 1 is rings 2 and 3). The back-end says how many pairs it takes (GET_QUEUE_NUM),
 * maps the region once, and carries frames on both pairs: flows from the switch spread over both rx rings (each
 * flow on one), and frames sent on either tx ring reach the switch. A ring the front-end disables
 * (SET_VRING_ENABLE 0, as QEMU does when the guest sets fewer pairs) gets no frames.
 */
class VhostUserMultiqueueTest {
    static final long USER_BASE = 0x7f00_0000_0000L, MEM = 4L << 20;
    static final int QSIZE = 128, HDR = 12, SLOT = 2048;
    static final long MAC_A = MacAddress.parse("02:00:00:00:0a:07"), MAC_PEER = MacAddress.parse("02:00:00:00:0b:07");
    static final Duration WAIT = Duration.ofSeconds(30);

    Path dir;
    Container container;
    Device a;
    VhostUserBackend backend;
    FrontEnd fe;
    Memfd mem;
    GuestMemory memory;
    final SplitVirtqueueDriver[] rings = new SplitVirtqueueDriver[4];
    final EventFd[] kicks = new EventFd[4], calls = new EventFd[4];
    final long[][] addrOf = new long[4][QSIZE];
    SwitchPort peer;
    final ConcurrentLinkedQueue<byte[]> peerGot = new ConcurrentLinkedQueue<>();

    @AfterEach
    void tearDown() throws Exception {
        if (fe != null) fe.close();
        if (backend != null) backend.close();
        for (EventFd e : kicks) if (e != null) e.close();
        for (EventFd e : calls) if (e != null) e.close();
        if (mem != null) mem.close();
        if (dir != null) {
            try (var s = Files.list(dir)) { s.forEach(p -> p.toFile().delete()); }
            Files.deleteIfExists(dir);
        }
    }

    static ByteBuffer region() {
        return Codec.payload(40).putLong(0).putLong(0).putLong(MEM).putLong(USER_BASE).putLong(0).flip();
    }

    /** Ring {@code i}'s window in guest memory: its ring at i x 256 KiB, its buffers after it. */
    static long ringAt(int i) {
        return 0x4_0000L * i;
    }

    @Test
    void twoVhostDevicesOnOneConnectionCarryFramesOnBothQueuePairs() throws Exception {
        dir = Files.createTempDirectory("jvbus-mq");
        container = Bus.withDiscoveredModels().createContainer("vu-mq-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        a = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(MAC_A), "queue-pairs", "2"));
        peer = Networks.of(container).getOrCreate("default").join(new NetPort() {
            @Override public String name() { return "peer"; }

            @Override public DropReason deliver(MemorySegment f, long off, int len) {
                peerGot.add(f.asSlice(off, len).toArray(ValueLayout.JAVA_BYTE));
                return null;
            }
        });
        backend = VhostUserBackend.serve(a, dir.resolve("a.sock"));
        fe = new FrontEnd(backend.socket());
        mem = Memfd.create("mq-guest", MEM);
        memory = GuestMemory.of(new MemoryRegion(0, MEM, mem.segment()));

        long features = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MQ.mask() | (1L << Wire.F_PROTOCOL_FEATURES);
        fe.send(Request.GET_FEATURES);
        assertThat(fe.replyU64(Request.GET_FEATURES) & VirtioNetFeatures.MQ.mask()).as("MQ offered").isNotZero();
        fe.send(Request.GET_PROTOCOL_FEATURES);
        assertThat(ProtocolFeature.MQ.in(fe.replyU64(Request.GET_PROTOCOL_FEATURES))).isTrue();
        fe.sendU64(Request.SET_PROTOCOL_FEATURES,
                ProtocolFeature.maskOf(ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIGURE_MEM_SLOTS));
        fe.send(Request.GET_QUEUE_NUM);
        assertThat(fe.replyU64(Request.GET_QUEUE_NUM)).as("queue pairs the back-end takes").isEqualTo(2);

        // vhost device 0 (rings 0, 1), then vhost device 1 (rings 2, 3): each sets features and adds the region.
        for (int pair = 0; pair < 2; pair++) {
            fe.send(Request.SET_OWNER);
            fe.sendU64(Request.SET_FEATURES, features);
            fe.send(Request.ADD_MEM_REG, Wire.FLAG_NEED_REPLY, region(), mem.fd());
            assertThat(fe.replyU64(Request.ADD_MEM_REG)).as("ADD_MEM_REG of vhost device %d", pair).isZero();
            for (int i = 2 * pair; i < 2 * pair + 2; i++) placeRing(i);
        }
        fe.send(Request.ADD_MEM_REG, Wire.FLAG_NEED_REPLY, region(), mem.fd());
        assertThat(fe.replyU64(Request.ADD_MEM_REG)).as("a third holder of one region: more than one per pair").isNotZero();
        await(() -> a.queueStats().stream().limit(4).allMatch(q -> q.running()), "all four rings run");

        // Flows from the switch: over both rx rings, each flow on one.
        Map<Integer, Set<Integer>> flows = flowsFromPeer(32, 0);
        assertThat(flows.values()).allSatisfy(q -> assertThat(q).hasSize(1));
        assertThat(flows.values().stream().flatMap(Set::stream).distinct().sorted().toList()).containsExactly(0, 2);

        // Frames on either tx ring reach the switch.
        for (int i = 0; i < 10; i++) {
            transmit(1, i);
            transmit(3, 100 + i);
        }
        await(() -> peerGot.size() == 20, "the peer got every frame sent on tx0 and tx1");
        assertThat(a.queueStats().get(VirtioNetModel.txQueue(0)).buffers()).isEqualTo(10);
        assertThat(a.queueStats().get(VirtioNetModel.txQueue(1)).buffers()).isEqualTo(10);

        // The guest went back to one pair: QEMU disables pair 1's rings; every flow lands on rx0.
        fe.sendState(Request.SET_VRING_ENABLE, 2, 0);
        fe.sendState(Request.SET_VRING_ENABLE, 3, 0);
        fe.send(Request.GET_FEATURES);
        fe.replyU64(Request.GET_FEATURES);
        Map<Integer, Set<Integer>> one = flowsFromPeer(32, 1000);
        assertThat(one.values()).allSatisfy(q -> assertThat(q).containsExactly(0));

        // One vhost device removes the region: the other still holds it, the rings run on it.
        ByteBuffer rem = Codec.payload(40).putLong(0).putLong(0).putLong(MEM).putLong(USER_BASE).putLong(0).flip();
        fe.send(Request.REM_MEM_REG, Wire.FLAG_NEED_REPLY, rem);
        assertThat(fe.replyU64(Request.REM_MEM_REG)).isZero();
        assertThat(flowsFromPeer(4, 2000)).isNotEmpty();
    }

    /** Device A alone, with {@code pairs} queue pairs, on a back-end of its own, and a front-end connected to it. */
    private void serveOneDevice(String tag, int pairs) throws Exception {
        dir = Files.createTempDirectory("jvbus-" + tag);
        container = Bus.withDiscoveredModels().createContainer("vu-" + tag + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        a = container.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", MacAddress.toString(MAC_A), "queue-pairs", Integer.toString(pairs)));
        backend = VhostUserBackend.serve(a, dir.resolve("a.sock"));
        fe = new FrontEnd(backend.socket());
    }

    /**
     * A device with one queue pair offers no multiqueue to the guest (no VIRTIO_NET_F_MQ), but its back-end still
     * implements PROTOCOL_F_MQ, as vhost-user.rst asks of back-ends "even for devices with a fixed number of
     * virtqueues": GET_QUEUE_NUM, once it is acked, says 1.
     */
    @Test
    void aDeviceWithOneQueuePairOffersNoMqToTheGuestAndSaysOnePairToTheFrontEnd() throws Exception {
        serveOneDevice("mq1", 1);

        fe.send(Request.GET_FEATURES);
        long offered = fe.replyU64(Request.GET_FEATURES);
        assertThat(VirtioNetFeatures.MQ.in(offered)).as("VIRTIO_NET_F_MQ offered with one pair").isFalse();
        assertThat(VirtioNetFeatures.CTRL_VQ.in(offered)).as("the control queue is still offered").isTrue();
        fe.send(Request.GET_PROTOCOL_FEATURES);
        long proto = fe.replyU64(Request.GET_PROTOCOL_FEATURES);
        assertThat(ProtocolFeature.MQ.in(proto)).as("PROTOCOL_F_MQ offered with one pair").isTrue();
        fe.sendU64NeedReply(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ));
        assertThat(fe.replyU64(Request.SET_PROTOCOL_FEATURES)).as("PROTOCOL_F_MQ acked").isZero();
        fe.send(Request.GET_QUEUE_NUM);
        assertThat(fe.replyU64(Request.GET_QUEUE_NUM)).as("the one pair the back-end takes").isEqualTo(1);
        assertThat(a.featureCatalog().byBit(VirtioNetFeatures.MQ.bit())).as("the device's catalog").isEmpty();
    }

    /**
     * vhost-user.rst: GET_QUEUE_NUM "should be sent only when VHOST_USER_PROTOCOL_F_MQ is set". A front-end of a
     * two-pair device that did not ack PROTOCOL_F_MQ and asks anyway is refused the way the session refuses any request
     * outside what was negotiated: a reply of 0 (it waits for one), the reason as the session's error, and the session
     * goes on: once it acks MQ the same question gets the device's pairs.
     */
    @Test
    void getQueueNumWithoutProtocolMqIsRefusedOnThatSessionWhichGoesOn() throws Exception {
        serveOneDevice("mq0", 2);

        fe.send(Request.GET_PROTOCOL_FEATURES);
        assertThat(ProtocolFeature.MQ.in(fe.replyU64(Request.GET_PROTOCOL_FEATURES))).as("PROTOCOL_F_MQ offered").isTrue();
        fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
        fe.send(Request.GET_QUEUE_NUM);
        assertThat(fe.replyU64(Request.GET_QUEUE_NUM)).as("GET_QUEUE_NUM with PROTOCOL_F_MQ offered but not acked").isZero();
        assertThat(backend.session().lastError()).contains("GET_QUEUE_NUM without VHOST_USER_PROTOCOL_F_MQ");

        fe.sendU64NeedReply(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ));
        assertThat(fe.replyU64(Request.SET_PROTOCOL_FEATURES)).as("the session goes on: MQ acked").isZero();
        fe.send(Request.GET_QUEUE_NUM);
        assertThat(fe.replyU64(Request.GET_QUEUE_NUM)).as("queue pairs, now that PROTOCOL_F_MQ is negotiated").isEqualTo(2);
    }

    void placeRing(int i) throws QueueFault {
        long at = ringAt(i);
        kicks[i] = EventFd.create();
        calls[i] = EventFd.create();
        rings[i] = SplitVirtqueueDriver.create(i, QSIZE, at, at + 0x1000, at + 0x2000, memory, false, false, false, Notifier.of(kicks[i]));
        if (i % 2 == 0) {
            for (int s = 0; s < QSIZE; s++) {
                long buf = at + 0x4000 + (long) s * SLOT;
                int head = rings[i].addLater(buf, SLOT, true);
                addrOf[i][head] = buf;
            }
            rings[i].publishAvail();
        }
        fe.sendState(Request.SET_VRING_NUM, i, QSIZE);
        fe.sendState(Request.SET_VRING_BASE, i, 0);
        fe.sendAddr(i, USER_BASE + at, USER_BASE + at + 0x2000, USER_BASE + at + 0x1000);
        fe.sendU64(Request.SET_VRING_KICK, i, kicks[i].fd());
        fe.sendU64(Request.SET_VRING_CALL, i, calls[i].fd());
        fe.sendState(Request.SET_VRING_ENABLE, i, 1);
    }

    /** The peer sends {@code n} UDP flows to A: on which rx rings (0 or 2) each arrived. */
    Map<Integer, Set<Integer>> flowsFromPeer(int n, int portBase) throws Exception {
        MemorySegment f = MemorySegment.ofArray(new byte[64]);
        for (int i = 0; i < n; i++) {
            ByteBuffer b = ByteBuffer.wrap((byte[]) f.heapBase().orElseThrow());
            b.put(MacAddress.toBytes(MAC_A)).put(MacAddress.toBytes(MAC_PEER)).putShort((short) 0x0800);
            b.put((byte) 0x45).put((byte) 0).putShort((short) 50).putInt(0).put((byte) 64).put((byte) 17).putShort((short) 0)
                    .putInt(0xc0000201).putInt(0xc0000202).putShort((short) (30_000 + portBase + i)).putShort((short) 9);
            peer.send(f, 0, 64);
        }
        Map<Integer, Set<Integer>> seen = new HashMap<>();
        int got = 0;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (got < n) {
            for (int r = 0; r <= 2; r += 2) {
                for (long e; (e = rings[r].pollUsed()) >= 0; got++) {
                    int head = SplitVirtqueueDriver.usedId(e);
                    long buf = addrOf[r][head];
                    int sport = Short.toUnsignedInt(mem.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.BIG_ENDIAN),
                            buf + HDR + 34));
                    seen.computeIfAbsent(sport, k -> new TreeSet<>()).add(r);
                    int again = rings[r].addLater(buf, SLOT, true);
                    addrOf[r][again] = buf;
                }
                rings[r].publishAvail();
            }
            if (System.nanoTime() > deadline) throw new AssertionError("A received " + got + " of " + n + ": " + a.queueStats());
            Thread.onSpinWait();
        }
        return seen;
    }

    void transmit(int ring, int seq) throws QueueFault {
        long buf = ringAt(ring) + 0x4000 + (long) (seq % QSIZE) * SLOT;
        MemorySegment s = mem.segment();
        s.asSlice(buf, HDR).fill((byte) 0);
        MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(MAC_PEER)), 0, s, buf + HDR, 6);
        MemorySegment.copy(MemorySegment.ofArray(MacAddress.toBytes(MAC_A)), 0, s, buf + HDR + 6, 6);
        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, buf + HDR + 12, (short) 0xb588);
        s.set(ValueLayout.JAVA_INT_UNALIGNED, buf + HDR + 14, seq);
        if (rings[ring].add(buf, HDR + 60, false) < 0) throw new AssertionError("tx ring full");
        rings[ring].kickIfNeeded();
        while (rings[ring].pollUsed() >= 0) { }
    }

    static void await(java.util.function.BooleanSupplier c, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out: " + what);
            Thread.sleep(1);
        }
    }
}
