package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.testing.FdLedger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fds a vhost-user front-end passes, refused for every reason there is: each refused request
 * fails with a non-zero REPLY_ACK, closes every fd it carried (none stays open in this process) and
 * closes no other fd (a sentinel survives), and the session answers the next request.
 */
class VhostUserFdRulesTest {
    static final long MEM = 1 << 20;
    static final long USER_BASE = 0x7f00_0000_0000L;
    static final long V1 = VirtioFeatures.VERSION_1.mask();

    @TempDir
    Path dir;
    Device device;
    VhostUserBackend backend;
    Memfd mem;
    EventFd bell;
    UnixConnection.Pair socketPair;
    final FdLedger fds = new FdLedger();

    @BeforeEach
    void setUp() {
        device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
        backend = VhostUserBackend.serve(device, dir.resolve("dev.sock"));
        mem = Memfd.create("guest", MEM);
        bell = EventFd.create();
        socketPair = UnixConnection.pair();
    }

    @AfterEach
    void tearDown() {
        backend.close();
        mem.close();
        bell.close();
        socketPair.close();
        fds.close();
    }

    /** A front-end with REPLY_ACK (so every refusal is answered) and, as asked, more protocol features. */
    private FrontEnd frontEnd(ProtocolFeature... more) {
        FrontEnd fe = new FrontEnd(backend.socket());
        fe.send(Request.SET_OWNER);
        long mask = ProtocolFeature.REPLY_ACK.mask();
        for (ProtocolFeature f : more) mask |= f.mask();
        fe.sendU64(Request.SET_PROTOCOL_FEATURES, mask);
        fe.sendU64(Request.SET_FEATURES, V1 | (1L << Wire.F_PROTOCOL_FEATURES));
        sessionGoesOn(fe);   // the session exists (its socket is in every snapshot) before anything is counted
        return fe;
    }

    /** Sends a request that must be refused (NEED_REPLY), and checks the fds and the reason. */
    private void refused(FrontEnd fe, Request r, ByteBuffer payload, String reason, int... passed) throws Exception {
        long ack = fds.around(r + " refused", () -> {
            fe.send(r, Wire.FLAG_NEED_REPLY, payload, passed);
            return fe.replyU64(r);
        });
        assertThat(ack).as(r + " is refused").isNotZero();
        assertThat(backend.session().lastError()).contains(reason);
        sessionGoesOn(fe);
    }

    private static void sessionGoesOn(FrontEnd fe) {
        fe.send(Request.GET_FEATURES);
        assertThat(fe.replyU64(Request.GET_FEATURES)).isNotZero();
    }

    private static ByteBuffer u64(long v) {
        return Codec.payload(8).putLong(v).flip();
    }

    /** SET_MEM_TABLE / ADD_MEM_REG region: guest address, size, user address, mmap offset. */
    private static ByteBuffer memTable(long[]... regions) {
        ByteBuffer p = Codec.payload(8 + 32 * regions.length).putInt(regions.length).putInt(0);
        for (long[] r : regions) p.putLong(r[0]).putLong(r[1]).putLong(r[2]).putLong(r[3]);
        return p.flip();
    }

    private static ByteBuffer region(long guest, long size, long user, long offset) {
        return Codec.payload(40).putLong(0).putLong(guest).putLong(size).putLong(user).putLong(offset).flip();
    }

    @Test
    void doorbellsForARingPastTheEndAreRefusedAndTheirFdsClosed() throws Exception {
        try (FrontEnd fe = frontEnd()) {
            refused(fe, Request.SET_VRING_KICK, u64(7), "no ring 7", bell.fd());
            refused(fe, Request.SET_VRING_CALL, u64(7), "no ring 7", bell.fd());
            refused(fe, Request.SET_VRING_ERR, u64(7), "no ring 7", bell.fd());
        }
    }

    @Test
    void doorbellsThatAreNotEventfdsAreRefusedAndClosed() throws Exception {
        try (FrontEnd fe = frontEnd()) {
            refused(fe, Request.SET_VRING_KICK, u64(0), "kick fd is not an eventfd", mem.fd());
            refused(fe, Request.SET_VRING_CALL, u64(0), "call fd is not an eventfd", socketPair.first().fd());
            refused(fe, Request.SET_VRING_ERR, u64(1), "err fd is not an eventfd", mem.fd());
            refused(fe, Request.SET_LOG_FD, Codec.payload(0), "log fd is not an eventfd", mem.fd());
        }
    }

    @Test
    void memorySlotRequestsWithoutConfigureMemSlotsAreRefusedAndTheirFdsClosed() throws Exception {
        try (FrontEnd fe = frontEnd()) {
            refused(fe, Request.ADD_MEM_REG, region(0, MEM, USER_BASE, 0), "without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS", mem.fd());
            refused(fe, Request.REM_MEM_REG, region(0, MEM, USER_BASE, 0), "without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS", mem.fd());
        }
        try (FrontEnd fe = frontEnd(ProtocolFeature.CONFIGURE_MEM_SLOTS)) {
            refused(fe, Request.REM_MEM_REG, region(0, MEM, USER_BASE, 0), "REM_MEM_REG: no region", mem.fd());
            refused(fe, Request.ADD_MEM_REG, region(0, MEM * 4, USER_BASE, 0), "beyond its file", mem.fd());
        }
    }

    @Test
    void aMemoryTableWhoseSecondRegionFailsClosesEachFdOnceAndNoOther() throws Exception {
        try (FrontEnd fe = frontEnd(); Memfd second = Memfd.create("second", MEM)) {
            long[] first = {0, MEM, USER_BASE, 0};
            refused(fe, Request.SET_MEM_TABLE, memTable(first, new long[] {MEM, MEM, USER_BASE + MEM, 0}),
                    "memory region fd is a SOCKET", mem.fd(), socketPair.first().fd());
            refused(fe, Request.SET_MEM_TABLE, memTable(first, new long[] {MEM, MEM * 2, USER_BASE + MEM, 0}),
                    "beyond its file", mem.fd(), second.fd());
            refused(fe, Request.SET_MEM_TABLE, memTable(first, new long[] {MEM, MEM, USER_BASE + MEM / 2, 0}),
                    "overlap in user space", mem.fd(), second.fd());
            // Found by the memory-table fuzz target: a region that ends exactly at the top of the user address space
            // (its end wraps to 0) hid an overlap with one below it.
            refused(fe, Request.SET_MEM_TABLE, memTable(new long[] {0, MEM, -MEM - MEM / 2, 0}, new long[] {MEM, MEM, -MEM, 0}),
                    "overlap in user space", mem.fd(), second.fd());
            // and a good table still maps
            fe.send(Request.SET_MEM_TABLE, Wire.FLAG_NEED_REPLY, memTable(first), mem.fd());
            assertThat(fe.replyU64(Request.SET_MEM_TABLE)).isZero();
        }
    }

    @Test
    void anOPathFdAndAReadOnlyFdOfAFileTheFrontEndMayNotWriteAreRefusedAsMemoryAndAsLogAndTheFileIsUnchanged() throws Exception {
        Path secret = dir.resolve("secret");
        byte[] content = HostileFds.readOnlyFile(secret, "another user's key".repeat(60_000));
        try (FrontEnd fe = frontEnd(ProtocolFeature.LOG_SHMFD);
             OwnedFd path = HostileFds.openPath(secret); OwnedFd readOnly = HostileFds.openReadOnly(secret)) {
            long[] table = {0, MEM, USER_BASE, 0};
            refused(fe, Request.SET_MEM_TABLE, memTable(table), "memory region fd was opened O_PATH", path.number());
            refused(fe, Request.SET_MEM_TABLE, memTable(table), "memory region fd was opened O_RDONLY, not O_RDWR", readOnly.number());

            // SET_LOG_BASE always answers (0 even when refused, as the spec has it): the reason is in lastError.
            for (OwnedFd fd : new OwnedFd[] {path, readOnly}) {
                fds.around("SET_LOG_BASE refused", () -> {
                    fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(4096).putLong(0).flip(), fd.number());
                    return fe.replyU64(Request.SET_LOG_BASE);
                });
                assertThat(backend.session().lastError()).contains("cannot map the dirty log: log fd was opened O_");
            }
            assertThat(backend.session().logActivity().logBasesSet()).isZero();
        }
        assertThat(Files.readAllBytes(secret)).as("the file is unchanged").isEqualTo(content);
    }

    private static ByteBuffer inflight(long size, int queues, int queueSize) {
        return Codec.payload(24).putLong(size).putLong(0).putShort((short) queues).putShort((short) queueSize).putInt(0).flip();
    }

    @Test
    void theInflightBufferIsASealedMemfdOfOursAndOnlySuchABufferIsTakenBackEachRefusedFdClosedOnce() throws Exception {
        long size = InflightRegion.bytesFor(2, 256);
        try (FrontEnd fe = frontEnd()) {
            refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 256), "without VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD", mem.fd());
        }
        Path file = dir.resolve("inflight-file");
        HostileFds.readOnlyFile(file, "x".repeat((int) size));
        try (FrontEnd fe = frontEnd(ProtocolFeature.INFLIGHT_SHMFD);
             OwnedFd unsealed = HostileFds.memfd("unsealed", size, 0);
             OwnedFd readOnly = HostileFds.openReadOnly(file)) {
            fe.send(Request.GET_INFLIGHT_FD, 0, inflight(0, 2, 256));
            FrontEnd.ReplyWithFd r = fe.replyWithFd(Request.GET_INFLIGHT_FD);
            try (OwnedFd ours = r.fd()) {
                assertThat(r.payload().getLong()).as("mmap size").isEqualTo(size);
                assertThat(r.payload().getLong()).as("mmap offset").isZero();
                assertThat(ours).as("the buffer's fd comes with the reply").isNotNull();
                assertThat(ours.stat().size()).isEqualTo(size);
                dev.jvbus.core.sys.MappingRule.SEALED_MEMFD.check(ours);   // a memfd that can neither shrink nor grow

                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 256), "inflight fd is a ANONYMOUS", bell.fd());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 256), "not sealed with F_SEAL_SHRINK", unsealed.number());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 256), "O_RDONLY", readOnly.number());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size - 64, 2, 256), "mmap size " + (size - 64), ours.number());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 3, 256), "inflight buffer for 3 queues; the device has 2", ours.number());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 100), "queues of 100 entries", ours.number());
                refused(fe, Request.SET_INFLIGHT_FD, inflight(size, 2, 256), "fds", ours.number(), ours.number());
                // and ours is taken back
                fe.send(Request.SET_INFLIGHT_FD, Wire.FLAG_NEED_REPLY, inflight(size, 2, 256), ours.number());
                assertThat(fe.replyU64(Request.SET_INFLIGHT_FD)).isZero();
            }
        }
    }

    @Test
    void anInflightBufferOverItsLimitIsNeitherMadeNorTaken() throws Exception {
        backend.close();
        backend = VhostUserBackend.serve(device, dir.resolve("small.sock"), VhostUserLimits.DEFAULTS.withInflightBytes(4096));
        try (FrontEnd fe = frontEnd(ProtocolFeature.INFLIGHT_SHMFD); Memfd big = Memfd.create("big", InflightRegion.bytesFor(2, 1024))) {
            fe.send(Request.GET_INFLIGHT_FD, 0, inflight(0, 2, 1024));
            FrontEnd.ReplyWithFd r = fe.replyWithFd(Request.GET_INFLIGHT_FD);
            assertThat(r.fd()).as("no buffer, no fd").isNull();
            assertThat(r.payload().getLong()).as("the spec's 'no buffer': size 0").isZero();
            assertThat(backend.session().lastError()).contains("(limit: VhostUserLimits.inflightBytes = 4096)");
            refused(fe, Request.SET_INFLIGHT_FD, inflight(big.size(), 2, 1024), "(limit: VhostUserLimits.inflightBytes = 4096)", big.fd());
        }
    }

    @Test
    void aLogBaseWithoutLogShmfdIsRefusedAndItsFdClosed() throws Exception {
        try (FrontEnd fe = frontEnd(); Memfd log = Memfd.create("log", 4096)) {
            fds.around("SET_LOG_BASE without LOG_SHMFD", () -> {
                fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(32).putLong(0).flip(), log.fd());
                return fe.replyU64(Request.SET_LOG_BASE);
            });
            assertThat(backend.session().lastError()).contains("without VHOST_USER_PROTOCOL_F_LOG_SHMFD");
            sessionGoesOn(fe);
        }
    }

    @Test
    void malformedRequestsCarryingFdsAreRefusedAndTheFdsClosed() throws Exception {
        try (FrontEnd fe = frontEnd()) {
            // an fd where the request carries none
            refused(fe, Request.SET_VRING_NUM, Codec.payload(8).putInt(0).putInt(64).flip(), "1 fds, expected 0", bell.fd());
            // a payload of the wrong size
            refused(fe, Request.SET_VRING_KICK, Codec.payload(4).putInt(0).flip(), "payload of 4 bytes", bell.fd());
            // an unknown request with an fd
            fds.around("unknown request", () -> {
                fe.sendRaw(ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(99).putInt(Wire.VERSION | Wire.FLAG_NEED_REPLY)
                        .putInt(0).flip(), bell.fd());
                return fe.reply(99).getLong();
            });
            sessionGoesOn(fe);
        }
    }

    @Test
    void aMessageThatGathersMoreFdsThanItsRequestCarriesIsRefusedAndHoldsNone() throws Exception {
        try (FrontEnd fe = frontEnd()) {
            // Nine fds in one sendmsg: more than any vhost-user message carries (VHOST_MEMORY_BASELINE_NREGIONS = 8).
            int f = bell.fd();
            refused(fe, Request.SET_MEM_TABLE, memTable(new long[] {0, MEM, USER_BASE, 0}), "carried more fds than it may", f, f, f, f, f, f, f, f, f);
            // Four fds with each byte of a SET_VRING_NUM (which carries none): 80 fds over 20 sendmsg calls.
            ByteBuffer msg = Codec.request(Request.SET_VRING_NUM, Wire.FLAG_NEED_REPLY, Codec.payload(8).putInt(0).putInt(64).flip());
            byte[] bytes = new byte[msg.remaining()];
            msg.get(bytes);
            long ack = fds.around("fds spread over every byte", () -> {
                for (byte b : bytes) fe.conn.sendAll(new byte[] {b}, f, f, f, f);
                return fe.replyU64(Request.SET_VRING_NUM);
            });
            assertThat(ack).isNotZero();
            assertThat(backend.session().lastError()).contains("SET_VRING_NUM carried more fds than it may (limit: 0 for this request");
            sessionGoesOn(fe);
        }
    }
}
