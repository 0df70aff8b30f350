package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.SessionRefusal;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.testing.EchoModel;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each limit of a vhost-user back-end, hit by one front-end: that request or connection is refused
 * with a reason naming the limit, and a well-behaved front-end of another device on the same bus
 * keeps being answered (as does the next front-end of the same device).
 */
class VhostUserLimitsTest {
    static final long MEM = 1 << 20;
    static final long USER_BASE = 0x7f00_0000_0000L;
    static final long V1 = VirtioFeatures.VERSION_1.mask();

    @TempDir
    Path dir;
    Container container;
    VhostUserBackend backend;   // the device under attack
    VhostUserBackend other;     // another device, driven by a well-behaved front-end throughout
    FrontEnd good;

    @BeforeEach
    void setUp() {
        container = Bus.withDiscoveredModels().createContainer("c");
        other = VhostUserBackend.serve(container.addDevice(EchoModel.TYPE), dir.resolve("other.sock"));
        good = new FrontEnd(other.socket());
        good.send(Request.SET_OWNER);
        answers(good);
    }

    @AfterEach
    void tearDown() {
        good.close();
        other.close();
        if (backend != null) backend.close();
    }

    private VhostUserBackend serve(VhostUserLimits limits) {
        return VhostUserBackend.serve(container.addDevice(EchoModel.TYPE), dir.resolve("dev.sock"), limits);
    }

    private static void answers(FrontEnd fe) {
        fe.send(Request.GET_FEATURES);
        assertThat(fe.replyU64(Request.GET_FEATURES)).isNotZero();
    }

    static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("never happened: " + what);
            Thread.sleep(5);
        }
    }

    private static ByteBuffer memTable(long size, long user) {
        return Codec.payload(40).putInt(1).putInt(0).putLong(0).putLong(size).putLong(user).putLong(0).flip();
    }

    private static ByteBuffer region(long guest, long size, long user) {
        return Codec.payload(40).putLong(0).putLong(guest).putLong(size).putLong(user).putLong(0).flip();
    }

    @Test
    void aSecondFrontEndIsRefusedWhileOneDrivesTheDeviceAndTheFirstKeepsWorking() throws Exception {
        backend = serve(VhostUserLimits.DEFAULTS);
        try (FrontEnd first = new FrontEnd(backend.socket())) {
            first.send(Request.SET_OWNER);
            answers(first);
            try (FrontEnd second = new FrontEnd(backend.socket())) {
                assertThat(second.closedByPeer()).as("the second connection is closed at once").isTrue();
            }
            assertThat(backend.lastRefusal()).contains("is driven by another front-end (one front-end at a time per device)");
            assertThat(backend.refused(SessionRefusal.BUSY)).as("counted for metrics, by reason").isEqualTo(1);
            assertThat(backend.refused(SessionRefusal.RESOURCES)).isZero();
            answers(first);
            answers(good);
        }
        await(() -> backend.session() == null, "the first session ended");
        try (FrontEnd next = new FrontEnd(backend.socket())) {
            next.send(Request.SET_OWNER);
            answers(next);
            assertThat(backend.sessionsStarted()).isEqualTo(2);
        }
    }

    @Test
    void aFrontEndThatSendsNoSetOwnerInTimeIsDroppedNamingTheLimitAndOneThatDidStays() throws Exception {
        VhostUserLimits quick = VhostUserLimits.DEFAULTS.withOwnerTimeout(Duration.ofSeconds(2));
        backend = serve(quick);
        try (VhostUserBackend owned = VhostUserBackend.serve(container.addDevice(EchoModel.TYPE), dir.resolve("owned.sock"), quick);
             FrontEnd owner = new FrontEnd(owned.socket())) {
            owner.send(Request.SET_OWNER);
            answers(owner);
            try (FrontEnd idle = new FrontEnd(backend.socket())) {   // connects after the owner did
                answers(idle);   // requests before SET_OWNER are fine (QEMU asks for features first)
                VhostUserSession session = backend.session();
                assertThat(idle.closedByPeer()).as("dropped once the deadline passed").isTrue();
                assertThat(session.lastError()).contains("no SET_OWNER within 2000 ms (limit: VhostUserLimits.ownerTimeout)");
            }
            // The owner connected earlier, so its deadline has passed too: having sent SET_OWNER, it stays.
            answers(owner);
            await(() -> backend.device().holder().isEmpty(), "the dropped front-end's device is free again");
            try (FrontEnd next = new FrontEnd(backend.socket())) {
                next.send(Request.SET_OWNER);
                answers(next);
            }
        }
        answers(good);
    }

    @Test
    void memoryRegionsAndBytesAreLimitedEvenForASparseFileThatClaimsFortyTebibytes() throws Exception {
        backend = serve(VhostUserLimits.DEFAULTS.withRegionsPerSession(2).withBytesPerSession(4 * MEM));
        try (FrontEnd fe = new FrontEnd(backend.socket()); Memfd mem = Memfd.create("guest", 4 * MEM);
             OwnedFd sparse = HostileFds.memfd("sparse", 40L << 40, 0)) {
            fe.send(Request.SET_OWNER);
            fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.CONFIGURE_MEM_SLOTS,
                    ProtocolFeature.LOG_SHMFD));
            fe.send(Request.GET_MAX_MEM_SLOTS);
            assertThat(fe.replyU64(Request.GET_MAX_MEM_SLOTS)).as("the front-end is told the slot limit").isEqualTo(2);

            fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, memTable(40L << 40, USER_BASE), sparse.number());
            assertThat(fe.replyU64(Request.SET_MEM_TABLE)).isNotZero();
            assertThat(backend.session().lastError()).contains("limit: VhostUserLimits.bytesPerSession");

            fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, memTable(2 * MEM, USER_BASE), mem.fd());
            assertThat(fe.replyU64(Request.SET_MEM_TABLE)).isZero();
            assertThat(backend.mappedBytes()).as("what the session maps, for metrics").isEqualTo(2 * MEM);
            fe.send(Request.ADD_MEM_REG, Wire.FLAG_NEED_REPLY, region(4 * MEM, 3 * MEM, USER_BASE + 4 * MEM), mem.fd());
            assertThat(fe.replyU64(Request.ADD_MEM_REG)).as("5 MiB in all is past the 4 MiB limit").isNotZero();
            assertThat(backend.session().lastError()).contains("limit: VhostUserLimits.bytesPerSession");
            fe.send(Request.ADD_MEM_REG, Wire.FLAG_NEED_REPLY, region(4 * MEM, MEM, USER_BASE + 4 * MEM), mem.fd());
            assertThat(fe.replyU64(Request.ADD_MEM_REG)).isZero();
            assertThat(backend.mappedBytes()).isEqualTo(3 * MEM);
            fe.send(Request.ADD_MEM_REG, Wire.FLAG_NEED_REPLY, region(8 * MEM, MEM / 2, USER_BASE + 8 * MEM), mem.fd());
            assertThat(fe.replyU64(Request.ADD_MEM_REG)).isNotZero();
            assertThat(backend.session().lastError()).contains("3 memory regions (limit: VhostUserLimits.regionsPerSession = 2)");

            fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(40L << 40).putLong(0).flip(), sparse.number());
            fe.replyU64(Request.SET_LOG_BASE);
            assertThat(backend.session().lastError()).contains("log of " + (40L << 40) + " bytes (limit: VhostUserLimits.bytesPerSession");
            assertThat(backend.session().logActivity().logBasesSet()).isZero();
            answers(fe);
        }
        answers(good);
    }

    @Test
    void aSessionThreadThatCannotBeCreatedRefusesThatFrontEndOnlyAndTheNextIsServed() throws Exception {
        ThreadFactory platform = Thread.ofPlatform().daemon().factory();
        AtomicInteger made = new AtomicInteger();
        ThreadFactory failsFirst = r -> {
            if (made.incrementAndGet() == 1)
                throw new OutOfMemoryError("unable to create native thread: possibly out of memory or process/resource limits reached");
            return platform.newThread(r);
        };
        backend = VhostUserBackend.serve(container.addDevice(EchoModel.TYPE), dir.resolve("dev.sock"), VhostUserLimits.DEFAULTS, failsFirst);
        try (FrontEnd unlucky = new FrontEnd(backend.socket())) {
            assertThat(unlucky.closedByPeer()).isTrue();
        }
        assertThat(backend.lastRefusal()).contains("cannot start a session thread now (unable to create native thread");
        assertThat(backend.device().holder()).as("the device was released").isEmpty();
        try (FrontEnd next = new FrontEnd(backend.socket())) {
            next.send(Request.SET_OWNER);
            answers(next);
        }
        answers(good);
    }
}
