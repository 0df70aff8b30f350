package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.testing.EchoModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The control plane of the vhost-user back-end against a test-only model (the echo model records
 * what the device was started with), over a real socket with a real memfd and eventfds.
 */
class VhostUserSessionTest {
    static final long MEM = 1 << 20;
    static final long USER_BASE = 0x7f00_0000_0000L;   // where "QEMU" has the memory mapped
    static final long V1 = VirtioFeatures.VERSION_1.mask();
    static final long EVENT_IDX = VirtioFeatures.EVENT_IDX.mask();

    Path dir;
    Device device;
    EchoModel.Function fn;
    VhostUserBackend backend;
    Memfd mem;
    EventFd kick0, call0, kick1, call1, err0;

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("jvbus-vu");
        device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
        fn = EchoModel.CREATED.getLast();
        backend = VhostUserBackend.serve(device, dir.resolve("dev.sock"));
        mem = Memfd.create("guest", MEM);
        kick0 = EventFd.create(); call0 = EventFd.create(); kick1 = EventFd.create(); call1 = EventFd.create(); err0 = EventFd.create();
    }

    @AfterEach
    void tearDown() throws Exception {
        backend.close();
        for (AutoCloseable c : new AutoCloseable[] {mem, kick0, call0, kick1, call1, err0}) c.close();
        try (var s = Files.list(dir)) { s.forEach(p -> p.toFile().delete()); }
        Files.deleteIfExists(dir);
    }

    /** Polls a condition the session thread reaches; 20 s, like the other suites' waits, for a busy machine. */
    static void await(BooleanSupplier cond, String what) throws InterruptedException {
        boolean met = false;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!(met = cond.getAsBoolean()) && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(met).as(what).isTrue();
    }

    /** A request with a reply: the session handles messages in order, so everything sent before it is done. */
    static void sync(FrontEnd fe) {
        fe.send(Request.GET_FEATURES);
        fe.replyU64(Request.GET_FEATURES);
    }

    /** The session order QEMU uses for a net device, up to both rings enabled. */
    void setUpRings(FrontEnd fe, long features) {
        fe.send(Request.GET_FEATURES);
        long offered = fe.replyU64(Request.GET_FEATURES);
        assertThat(offered & (1L << Wire.F_PROTOCOL_FEATURES)).isNotZero();
        fe.send(Request.GET_PROTOCOL_FEATURES);
        long proto = fe.replyU64(Request.GET_PROTOCOL_FEATURES);
        fe.sendU64(Request.SET_PROTOCOL_FEATURES, proto & ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ));
        fe.send(Request.SET_OWNER);
        fe.sendU64(Request.SET_FEATURES, features | (1L << Wire.F_PROTOCOL_FEATURES));
        fe.sendMemTable(MEM, USER_BASE, mem.fd());
        ring(fe, 0, 0x1000, kick0, call0);
        ring(fe, 1, 0x8000, kick1, call1);
    }

    void ring(FrontEnd fe, int i, long at, EventFd kick, EventFd call) {
        fe.sendState(Request.SET_VRING_NUM, i, 256);
        fe.sendState(Request.SET_VRING_BASE, i, 0);
        fe.sendAddr(i, USER_BASE + at, USER_BASE + at + 0x2000, USER_BASE + at + 0x1000);
        fe.sendU64(Request.SET_VRING_KICK, i, kick.fd());
        fe.sendU64(Request.SET_VRING_CALL, i, call.fd());
        fe.sendState(Request.SET_VRING_ENABLE, i, 1);
    }

    @Test
    void aFrontEndNegotiatesPlacesRingsAndTheDeviceStartsWithThemTranslated() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            setUpRings(fe, V1 | EVENT_IDX);
            // The function starts inside the DRIVER_OK transition, so the status turns live just after: wait for both.
            await(() -> fn.lastStart != null && fn.lastStart.queues().size() == 2 && device.status().isLive(),
                    "device started with both rings and live");
            assertThat(device.features().negotiated()).isEqualTo(V1 | EVENT_IDX);
            var q1 = fn.lastStart.queue(1).orElseThrow();
            assertThat(q1.config().descAddr()).as("user address translated to guest address").isEqualTo(0x8000);
            assertThat(q1.config().availAddr()).isEqualTo(0x9000);
            assertThat(q1.config().usedAddr()).isEqualTo(0xA000);
            assertThat(q1.resume().nextAvail()).isZero();
            assertThat(q1.resume().eventIdx()).isTrue();

            int resets = fn.resets;
            assertThat(fe.getVringBase(0)).isZero();
            // The echo model cannot stop one queue alone: its whole data path stops, and stays stopped
            // while a ring it needs is missing; the device stays live for the ring to come back.
            await(() -> fn.resets > resets && !device.isQueueRunning(1), "a device missing a required ring stops its data path");
            int starts = fn.starts;
            fe.sendState(Request.SET_VRING_BASE, 0, 0);
            fe.sendU64(Request.SET_VRING_KICK, 0, kick0.fd());
            await(() -> fn.starts == starts + 1 && device.status().isLive(), "ring 0 restarted: the device runs again");
        }
    }

    /**
     * QEMU 7.2's order (seen with {@code -trace vhost_user_write}): SET_VRING_ENABLE for every ring
     * comes while the guest driver sets up its queues, BEFORE SET_FEATURES, because QEMU checks that
     * the back-end offered VHOST_USER_F_PROTOCOL_FEATURES, not that it acked it yet; after
     * SET_FEATURES, the memory and the rings it sends no more enables. Refusing those early
     * enables left every ring disabled and the guest without a network.
     */
    @Test
    void ringsEnabledBeforeSetFeaturesStartOnceTheyArePlacedAsWithQemu() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            fe.send(Request.GET_FEATURES);
            fe.replyU64(Request.GET_FEATURES);
            fe.send(Request.GET_PROTOCOL_FEATURES);
            long proto = fe.replyU64(Request.GET_PROTOCOL_FEATURES);
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, proto & ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ));
            fe.send(Request.SET_OWNER);
            fe.sendState(Request.SET_VRING_ENABLE, 0, 1);
            fe.sendState(Request.SET_VRING_ENABLE, 1, 1);
            fe.sendU64(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
            fe.sendMemTable(MEM, USER_BASE, mem.fd());
            for (int i = 0; i < 2; i++) {
                long at = i == 0 ? 0x1000 : 0x8000;
                fe.sendState(Request.SET_VRING_NUM, i, 256);
                fe.sendState(Request.SET_VRING_BASE, i, 0);
                fe.sendAddr(i, USER_BASE + at, USER_BASE + at + 0x2000, USER_BASE + at + 0x1000);
                fe.sendU64(Request.SET_VRING_KICK, i, (i == 0 ? kick0 : kick1).fd());
                fe.sendU64(Request.SET_VRING_CALL, i, (i == 0 ? call0 : call1).fd());
            }
            await(() -> device.status().isLive() && fn.lastStart != null && fn.lastStart.queues().size() == 2,
                    "device started with both rings enabled before SET_FEATURES");
            assertThat(backend.session().lastError()).isNull();
        }
    }

    @Test
    void dirtyLoggingMarksDeviceWritesInTheFrontEndsLogWithoutRestartingRings() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket()); Memfd logMem = Memfd.create("log", 4096)) {
            fe.send(Request.SET_OWNER);   // what every front-end sends first (a connection without it is dropped)
            fe.send(Request.GET_FEATURES);
            assertThat(fe.replyU64(Request.GET_FEATURES) & (1L << Wire.F_LOG_ALL)).as("VHOST_F_LOG_ALL offered").isNotZero();
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
            fe.sendU64(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
            fe.sendMemTable(MEM, USER_BASE, mem.fd());
            ring(fe, 0, 0x1000, kick0, call0);
            ring(fe, 1, 0x8000, kick1, call1);
            await(() -> device.status().isLive(), "live");
            sync(fe);   // every message sent so far is handled (a CALL fd after the KICK restarts the rings once more)
            int starts = fn.starts;

            // migration begins: the log (32 pages of 4 KiB per byte... 1 MiB of guest = 256 pages = 32 bytes), then LOG_ALL
            fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(32).putLong(0).flip(), logMem.fd());
            assertThat(fe.replyU64(Request.SET_LOG_BASE)).isZero();
            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES) | (1L << Wire.F_LOG_ALL));
            assertThat(fe.replyU64(Request.SET_FEATURES)).isZero();

            // the device writes guest memory through the memory it was started with
            fn.lastStart.memory().copyToGuest(java.lang.foreign.MemorySegment.ofArray(new byte[100]), 0, 0x4_2000, 100);
            byte page0x42 = logMem.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x42 / 8);
            assertThat(page0x42 & (1 << (0x42 % 8))).as("page 0x42 is dirty in the front-end's log").isNotZero();
            assertThat(fn.starts).as("turning logging on did not restart the rings").isEqualTo(starts);
            VhostUserSession.LogActivity during = backend.session().logActivity();
            assertThat(during).as("the operator sees the log in use").isEqualTo(new VhostUserSession.LogActivity(1, 1, true, 1));

            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
            assertThat(fe.replyU64(Request.SET_FEATURES)).isZero();
            fn.lastStart.memory().copyToGuest(java.lang.foreign.MemorySegment.ofArray(new byte[8]), 0, 0x5_0000, 8);
            assertThat(logMem.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x50 / 8) & (1 << (0x50 % 8))).isZero();
            assertThat(backend.session().logActivity()).as("logging off; what was marked stays counted")
                    .isEqualTo(new VhostUserSession.LogActivity(1, 1, false, 1));
        }
    }

    @Test
    void startedButDisabledRingsRunInactiveAndAreEnabledInPlace() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            fe.send(Request.SET_OWNER);   // what every front-end sends first (a connection without it is dropped)
            fe.sendU64(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
            fe.sendMemTable(MEM, USER_BASE, mem.fd());
            for (int i = 0; i < 2; i++) {
                EventFd kick = i == 0 ? kick0 : kick1, call = i == 0 ? call0 : call1;
                fe.sendState(Request.SET_VRING_NUM, i, 256);
                fe.sendAddr(i, USER_BASE + 0x1000 + 0x8000L * i, USER_BASE + 0x3000 + 0x8000L * i, USER_BASE + 0x2000 + 0x8000L * i);
                fe.sendU64(Request.SET_VRING_KICK, i, kick.fd());
                fe.sendU64(Request.SET_VRING_CALL, i, call.fd());
            }
            await(() -> fn.lastStart != null && fn.lastStart.queues().size() == 2, "started with both rings");
            sync(fe);
            assertThat(fn.lastStart.queues()).allSatisfy(q -> assertThat(q.active()).as("disabled until SET_VRING_ENABLE").isFalse());
            int starts = fn.starts;
            fe.sendState(Request.SET_VRING_ENABLE, 0, 1);
            fe.sendState(Request.SET_VRING_ENABLE, 1, 1);
            await(() -> fn.activity.containsAll(java.util.List.of("0=true", "1=true")), "both rings enabled in place");
            assertThat(fn.starts).as("no restart for an enable").isEqualTo(starts);
            fe.sendState(Request.SET_VRING_ENABLE, 1, 0);
            await(() -> fn.activity.contains("1=false"), "ring 1 disabled in place");
        }
    }

    @Test
    void featuresOutsideTheOfferAreRefusedWithAFailedAck() throws Exception {
        device.limitFeatures(~EVENT_IDX);
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            fe.send(Request.SET_OWNER);   // what every front-end sends first (a connection without it is dropped)
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | EVENT_IDX);
            assertThat(fe.replyU64(Request.SET_FEATURES)).as("non-zero ack = refused").isNotZero();
            assertThat(backend.session().lastError()).contains("not offered").contains("VIRTIO_RING_F_EVENT_IDX");
            assertThat(device.features().negotiated()).isZero();
            fe.sendU64NeedReply(Request.SET_FEATURES, V1);
            assertThat(fe.replyU64(Request.SET_FEATURES)).isZero();
            assertThat(device.features().negotiated()).isEqualTo(V1);
        }
    }

    /**
     * VHOST_F_LOG_ALL rides in SET_FEATURES; a request the back-end refuses (features outside the
     * offer, or a feature change while rings run) must change nothing, logging included.
     */
    @Test
    void aRefusedSetFeaturesDoesNotSwitchLoggingOn() throws Exception {
        device.limitFeatures(~EVENT_IDX);
        long logAll = 1L << Wire.F_LOG_ALL, proto = 1L << Wire.F_PROTOCOL_FEATURES;
        long indirect = VirtioFeatures.INDIRECT_DESC.mask();
        try (FrontEnd fe = new FrontEnd(backend.socket()); Memfd logMem = Memfd.create("log", 4096)) {
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
            fe.sendU64(Request.SET_FEATURES, V1 | proto);
            fe.sendMemTable(MEM, USER_BASE, mem.fd());
            ring(fe, 0, 0x1000, kick0, call0);
            ring(fe, 1, 0x8000, kick1, call1);
            await(() -> device.status().isLive(), "live");
            fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(32).putLong(0).flip(), logMem.fd());
            assertThat(fe.replyU64(Request.SET_LOG_BASE)).isZero();

            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | EVENT_IDX | proto | logAll);
            assertThat(fe.replyU64(Request.SET_FEATURES)).as("EVENT_IDX is not offered: refused").isNotZero();
            assertThat(backend.session().lastError()).contains("not offered");
            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | indirect | proto | logAll);
            assertThat(fe.replyU64(Request.SET_FEATURES)).as("a feature change while rings run: refused").isNotZero();
            assertThat(backend.session().lastError()).contains("while rings run");

            VhostUserSession.LogActivity after = backend.session().logActivity();
            assertThat(after.active()).as("logging stays off after refused requests").isFalse();
            assertThat(after.logAllEnabled()).isZero();
            fn.lastStart.memory().copyToGuest(java.lang.foreign.MemorySegment.ofArray(new byte[8]), 0, 0x4_2000, 8);
            assertThat(logMem.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x42 / 8)).as("nothing marked").isZero();

            fe.sendU64NeedReply(Request.SET_FEATURES, V1 | proto | logAll);   // the same features, LOG_ALL on: valid
            assertThat(fe.replyU64(Request.SET_FEATURES)).isZero();
            assertThat(backend.session().logActivity().active()).as("a valid request switches logging on").isTrue();
        }
    }

    @Test
    void malformedMessagesFailThatRequestAndTheSessionGoesOn() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            fe.send(Request.SET_OWNER);   // what every front-end sends first (a connection without it is dropped)
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
            // wrong payload size for SET_VRING_NUM
            fe.send(Request.SET_VRING_NUM, Wire.FLAG_NEED_REPLY, Codec.payload(4).putInt(0).flip());
            assertThat(fe.replyU64(Request.SET_VRING_NUM)).isNotZero();
            assertThat(backend.session().lastError()).contains("payload of 4 bytes, expected 8");
            // unknown request
            fe.sendRaw(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(99).putInt(Wire.VERSION | Wire.FLAG_NEED_REPLY).putInt(0).flip());
            assertThat(fe.reply(99).getLong()).isNotZero();
            // a memory table without its fd
            ByteBuffer p = Codec.payload(40).putInt(1).putInt(0).putLong(0).putLong(MEM).putLong(USER_BASE).putLong(0).flip();
            fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, p);
            assertThat(fe.replyU64(Request.SET_MEM_TABLE)).isNotZero();
            assertThat(backend.session().lastError()).contains("0 fds, expected 1");
            // a memfd where an eventfd belongs
            fe.send(Request.SET_VRING_KICK, Wire.FLAG_NEED_REPLY, Codec.payload(8).putLong(0).flip(), mem.fd());
            assertThat(fe.replyU64(Request.SET_VRING_KICK)).isNotZero();
            assertThat(backend.session().lastError()).contains("kick fd is not an eventfd");
            // a ring size that is not a power of two, a ring that does not exist
            fe.send(Request.SET_VRING_NUM, Wire.FLAG_NEED_REPLY, Codec.payload(8).putInt(0).putInt(100).flip());
            assertThat(fe.replyU64(Request.SET_VRING_NUM)).isNotZero();
            fe.send(Request.SET_VRING_NUM, Wire.FLAG_NEED_REPLY, Codec.payload(8).putInt(7).putInt(64).flip());
            assertThat(fe.replyU64(Request.SET_VRING_NUM)).isNotZero();
            assertThat(backend.session().lastError()).contains("no ring 7");
            // a memory region larger than its file
            ByteBuffer big = Codec.payload(40).putInt(1).putInt(0).putLong(0).putLong(MEM * 4).putLong(USER_BASE).putLong(0).flip();
            fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, big, mem.fd());
            assertThat(fe.replyU64(Request.SET_MEM_TABLE)).isNotZero();
            assertThat(backend.session().lastError()).contains("beyond its file");
            // and after all that, the session still answers
            fe.send(Request.GET_FEATURES);
            assertThat(fe.replyU64(Request.GET_FEATURES))
                    .isEqualTo(device.features().offered() | (1L << Wire.F_PROTOCOL_FEATURES) | (1L << Wire.F_LOG_ALL));
        }
    }

    @Test
    void ringAddressesOutsideTheMemoryTableDoNotStartAndRaiseTheErrorFd() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            fe.send(Request.SET_OWNER);   // what every front-end sends first (a connection without it is dropped)
            fe.sendU64(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
            fe.sendMemTable(MEM, USER_BASE, mem.fd());
            fe.sendU64(Request.SET_VRING_ERR, 0, err0.fd());
            fe.sendState(Request.SET_VRING_NUM, 0, 256);
            fe.sendAddr(0, USER_BASE + MEM - 16, USER_BASE, USER_BASE + 0x1000);  // desc table runs off the end
            fe.sendU64(Request.SET_VRING_KICK, 0, kick0.fd());
            fe.sendState(Request.SET_VRING_ENABLE, 0, 1);
            ring(fe, 1, 0x8000, kick1, call1);   // the device needs both rings before it tries to start
            await(() -> err0.drain() > 0, "error fd signalled");
            assertThat(backend.session().lastError()).contains("outside the memory table");
            assertThat(device.status().has(DeviceStatus.DRIVER_OK)).isFalse();
            fe.send(Request.GET_FEATURES);
            assertThat(fe.replyU64(Request.GET_FEATURES)).isNotZero();
        }
    }

    @Test
    void anImpossibleHeaderClosesTheConnectionAndANewFrontEndCanSetUpAgain() throws Exception {
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            setUpRings(fe, V1);
            await(() -> device.status().isLive(), "live");
            fe.sendRaw(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(1).putInt(1 << 20).flip());
            assertThat(fe.closedByPeer()).isTrue();
        }
        await(() -> device.status().bits() == 0 && device.holder().isEmpty(), "device reset and free");
        try (FrontEnd fe = new FrontEnd(backend.socket())) {
            setUpRings(fe, V1);
            await(() -> device.status().isLive(), "live again for the second front-end");
            assertThat(backend.sessionsStarted()).isEqualTo(2);
        }
    }

    @Test
    void aFrontEndThatVanishesReleasesTheDevice() throws Exception {
        FrontEnd fe = new FrontEnd(backend.socket());
        setUpRings(fe, V1);
        await(() -> device.status().isLive(), "live");
        int resetsBefore = fn.resets;
        fe.close();    // no goodbye: like a killed QEMU
        await(() -> device.holder().isEmpty(), "device released");
        assertThat(device.status().bits()).isZero();
        assertThat(fn.resets).isGreaterThan(resetsBefore);
    }
}
