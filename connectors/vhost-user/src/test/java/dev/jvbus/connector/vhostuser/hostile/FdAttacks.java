package dev.jvbus.connector.vhostuser.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.MessageType;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.connector.shm.server.RawClient;
import dev.jvbus.connector.vhostuser.FrontEnd;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.PeerSideFds;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Random;

/**
 * Attacks with the fds a tenant hands over (points 1 and 3): fds the bus must not map (a path handle,
 * a read-only file, a memfd that can still shrink) and fds riding on requests the bus refuses, which
 * it must close, once, whatever the reason for the refusal.
 */
final class FdAttacks {
    static final long USER_BASE = 0x7f00_0000_0000L;
    static final long PAGE = 4096;

    private FdAttacks() {}

    // ---------------------------------------------------------------- point 3: refused requests keep no fd

    static Attack shmRefusalsCloseTheirFds() {
        return Attack.now("3", "shm requests refused with fds attached (wrong kind, wrong count, bad region, another's device) leave the bus's open fds as they were", lan -> {
            Device d = lan.addNet("fd-thrower");
            try (RawClient raw = RawClient.greeted(lan.socket); EventFd e1 = EventFd.create(); EventFd e2 = EventFd.create();
                 Memfd m = Memfd.create("thrown", 16 * PAGE); UnixConnection.Pair sock = UnixConnection.pair()) {
                ok(raw.request(new Message.DevOpen(d.devid())));
                Runnable round = () -> shmRefusals(raw, d.devid(), lan.b.devid(), e1, e2, m, sock.first());
                round.run();      // once first: classes load and any file the JVM opens lazily is open before counting
                var before = Lan.openFdKinds();
                for (int i = 0; i < 3; i++) round.run();
                Lan.awaitFdsBackTo(before, "3 rounds of refused shm requests with fds");
                ok(raw.request(new Message.DevClose(d.devid())));
            }
            lan.unplug(d, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    private static void shmRefusals(RawClient raw, DevId mine, DevId pairs, EventFd e1, EventFd e2, Memfd m, UnixConnection sock) {
        try {
            refused(raw.raw(Wire.HEADER, MessageType.ENUMERATE.code(), 2, new byte[0], e1.fd(), e2.fd()), "ENUMERATE carries 0 fds, got 2");
            refused(raw.raw(Wire.HEADER + 28, MessageType.DEVSHM.code(), 2, devShmBody(mine, 0x10_0000, PAGE, 0), m.fd(), e1.fd()),
                    "DEVSHM carries 1 fds, got 2");
            refused(raw.request(new Message.DevShm(mine, 0x10_0000, PAGE, 0), sock.fd()), "not a memfd");
            refused(raw.request(new Message.DevShm(mine, 0x10_0000, 0, 0), m.fd()), "size must be positive");
            refused(raw.request(new Message.DevShm(mine, 0x10_0000, 17 * PAGE, 0), m.fd()), "runs past the end");
            refused(raw.request(new Message.Signal(mine, 0), sock.fd(), e1.fd()), "is a SOCKET");
            refused(raw.request(new Message.Signal(mine, 9), e1.fd(), e2.fd()), "");
            // B belongs to the pair's receiver: naming it gets nowhere, with or without fds
            refused(raw.request(new Message.DevOpen(pairs)), "already open");
            refused(raw.request(new Message.DevShm(pairs, 0x10_0000, PAGE, 0), m.fd()), "is not open");
            refused(raw.request(new Message.Signal(pairs, 0), e1.fd(), e2.fd()), "is not open");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static Attack vhostRefusalsCloseTheirFds() {
        return Attack.now("3", "vhost-user requests refused with fds attached (ring past the end, ADD_MEM_REG unconfigured, a region past its file) leave the bus's open fds as they were", lan -> {
            Device v = lan.addNet("vu-fd-thrower");
            try (VhostUserBackend be = lan.serve(v, "vu-fd-thrower");
                 FrontEnd fe = new FrontEnd(be.socket()); EventFd e = EventFd.create(); Memfd m = Memfd.create("vu-thrown", 16 * PAGE)) {
                fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
                fe.send(Request.SET_OWNER);
                Runnable round = () -> vhostRefusals(fe, be, e, m);
                round.run();
                var before = Lan.openFdKinds();
                for (int i = 0; i < 3; i++) round.run();
                Lan.awaitFdsBackTo(before, "3 rounds of refused vhost-user requests with fds");
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    private static void vhostRefusals(FrontEnd fe, VhostUserBackend be, EventFd e, Memfd m) {
        for (Request r : new Request[] {Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR}) {
            fe.send(r, NEED_REPLY, Codec.payload(8).putLong(0x7f).flip(), e.fd());    // ring 127: no such ring
            assertThat(fe.replyU64(r)).as(r + " for ring 127 is refused").isNotZero();
            assertThat(be.session().lastError()).as(r + "'s refusal").contains("no ring 127");
        }
        ByteBuffer region = Codec.payload(40).putLong(0).putLong(0).putLong(16 * PAGE).putLong(USER_BASE).putLong(0).flip();
        fe.send(Request.ADD_MEM_REG, NEED_REPLY, region, m.fd());                      // CONFIGURE_MEM_SLOTS never negotiated
        assertThat(fe.replyU64(Request.ADD_MEM_REG)).as("ADD_MEM_REG without CONFIGURE_MEM_SLOTS is refused").isNotZero();
        assertThat(be.session().lastError()).contains("ADD_MEM_REG without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS");
        fe.send(Request.SET_MEM_TABLE, NEED_REPLY, memTable(64 * PAGE), m.fd());       // larger than its 16-page file
        assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("a region past the end of its file is refused").isNotZero();
        assertThat(be.session().lastError()).contains("beyond its file of " + 16 * PAGE + " bytes");
        fe.send(Request.GET_FEATURES);
        assertThat(fe.replyU64(Request.GET_FEATURES)).as("the session still answers").isNotZero();
    }

    // ---------------------------------------------------------------- point 1: fds the bus must not map

    static Attack shmMapsOnlySealedReadWriteMemfds() {
        return Attack.now("1", "DEVSHM with an O_PATH fd, an O_RDONLY fd of a file the client may not write, a read-write regular file or a memfd that can shrink is refused with a message saying why, the file unchanged, no fd kept", lan -> {
            Device d = lan.addNet("mapper");
            Path file = readOnlyFile(), own = ownFile();
            byte[] before = Files.readAllBytes(file), ownBefore = Files.readAllBytes(own);
            int path = PeerSideFds.openPath(file), ro = PeerSideFds.openReadOnly(file);
            int unsealed = PeerSideFds.memfd("unsealed", 16 * PAGE, 0);
            int shrinkOnly = PeerSideFds.memfd("shrink-sealed", 16 * PAGE, PeerSideFds.SEAL_SHRINK);
            try (RawClient raw = RawClient.greeted(lan.socket); OwnedFd rw = HostileFds.openReadWrite(own)) {
                int rwFd = rw.number();
                ok(raw.request(new Message.DevOpen(d.devid())));
                Runnable round = () -> {
                    try {
                        refusedFds(raw.request(new Message.DevShm(d.devid(), 0x10_0000, PAGE, 0), path), "DEVSHM fd was opened O_PATH");
                        refusedFds(raw.request(new Message.DevShm(d.devid(), 0x10_0000, PAGE, 0), ro), "DEVSHM fd was opened O_RDONLY, not O_RDWR");
                        refusedFds(raw.request(new Message.DevShm(d.devid(), 0x10_0000, PAGE, 0), rwFd), "sealed with F_SEAL_SHRINK and F_SEAL_SEAL");
                        refusedFds(raw.request(new Message.DevShm(d.devid(), 0x10_0000, PAGE, 0), unsealed), "DEVSHM fd is not sealed with F_SEAL_SHRINK");
                        refusedFds(raw.request(new Message.DevShm(d.devid(), 0x10_0000, PAGE, 0), shrinkOnly),
                                "DEVSHM fd is sealed with F_SEAL_SHRINK but not F_SEAL_SEAL");
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                };
                round.run();      // once first: classes load before counting
                var fds = Lan.openFdKinds();
                for (int i = 0; i < 2; i++) round.run();
                Lan.awaitFdsBackTo(fds, "DEVSHM refused for O_PATH, O_RDONLY, a regular file and badly sealed memfds");
                ok(raw.request(new Message.DevClose(d.devid())));
            } finally {
                for (int fd : new int[] {path, ro, unsealed, shrinkOnly}) PeerSideFds.close(fd);
            }
            assertThat(Files.readAllBytes(file)).as("the read-only file").isEqualTo(before);
            assertThat(Files.readAllBytes(own)).as("the client's own regular file").isEqualTo(ownBefore);
            Files.deleteIfExists(file);
            Files.deleteIfExists(own);
            lan.unplug(d, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack vhostMapsOnlyReadWriteFds() {
        return Attack.now("1", "SET_MEM_TABLE and SET_LOG_BASE with an O_RDONLY fd or an O_PATH fd are refused with a message saying why, the file unchanged, no fd kept", lan -> {
            Device v = lan.addNet("vu-mapper");
            Path file = readOnlyFile();
            byte[] before = Files.readAllBytes(file);
            int path = PeerSideFds.openPath(file), ro = PeerSideFds.openReadOnly(file);
            try (VhostUserBackend be = lan.serve(v, "vu-mapper"); FrontEnd fe = new FrontEnd(be.socket())) {
                fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.LOG_SHMFD));
                fe.send(Request.SET_OWNER);
                Runnable round = () -> {
                    fe.send(Request.SET_MEM_TABLE, NEED_REPLY, memTable(2 * PAGE), ro);
                    assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("a read-only fd is refused").isNotZero();
                    assertThat(be.session().lastError()).contains("memory region fd was opened O_RDONLY, not O_RDWR");
                    fe.send(Request.SET_MEM_TABLE, NEED_REPLY, memTable(2 * PAGE), path);
                    assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("an O_PATH fd is refused").isNotZero();
                    assertThat(be.session().lastError()).contains("memory region fd was opened O_PATH");
                    // SET_LOG_BASE always replies 0 (the spec has no error for it): the refusal shows in lastError and no log is set.
                    for (int fd : new int[] {ro, path}) {
                        fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(8).putLong(0).flip(), fd);
                        fe.replyU64(Request.SET_LOG_BASE);
                        assertThat(be.session().lastError()).contains("cannot map the dirty log: log fd was opened " + (fd == ro ? "O_RDONLY, not O_RDWR" : "O_PATH"));
                    }
                    assertThat(be.session().logActivity().logBasesSet()).as("dirty logs taken").isZero();
                };
                round.run();
                var fds = Lan.openFdKinds();
                for (int i = 0; i < 2; i++) round.run();
                Lan.awaitFdsBackTo(fds, "SET_MEM_TABLE and SET_LOG_BASE refused for O_RDONLY and O_PATH fds");
            } finally {
                PeerSideFds.close(path);
                PeerSideFds.close(ro);
            }
            assertThat(Files.readAllBytes(file)).as("the read-only file").isEqualTo(before);
            Files.deleteIfExists(file);
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    // ---------------------------------------------------------------- helpers

    static final int NEED_REPLY = dev.jvbus.connector.vhostuser.protocol.Wire.FLAG_NEED_REPLY;

    /** A file with known bytes that its owner may only read (0444): another user's key, as far as the client goes. */
    static Path readOnlyFile() throws Exception {
        Path file = Files.createTempFile("jvbus-not-yours-", ".key");
        byte[] bytes = new byte[(int) (2 * PAGE)];
        new Random(42).nextBytes(bytes);
        Files.write(file, bytes);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("r--r--r--"));
        return file;
    }

    /** A one-region SET_MEM_TABLE payload: guest 0 = user {@link #USER_BASE} = offset 0 of the fd, {@code size} bytes. */
    static ByteBuffer memTable(long size) {
        return Codec.payload(8 + 32).putInt(1).putInt(0).putLong(0).putLong(size).putLong(USER_BASE).putLong(0).flip();
    }

    /** A file the client owns and may write (0600): a real file, but not a sealed memfd. */
    static Path ownFile() throws Exception {
        Path file = Files.createTempFile("jvbus-own-", ".img");
        byte[] bytes = new byte[(int) (16 * PAGE)];
        new Random(7).nextBytes(bytes);
        Files.write(file, bytes);
        return file;
    }

    static byte[] devShmBody(DevId devid, long guest, long size, long offset) {
        return ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN).putInt(devid.value()).putLong(guest).putLong(size).putLong(offset).array();
    }

    static void ok(Message.Reply r) {
        assertThat(r.isOk()).as(r.toString()).isTrue();
    }

    /** Refused as BAD_FDS, with a message containing {@code text}. */
    static void refusedFds(Message.Reply r, String text) {
        refused(r, text);
        assertThat(r.error()).as(r.toString()).isEqualTo(ErrorCode.BAD_FDS);
    }

    /** The request was refused, with a message containing {@code text}. */
    static void refused(Message.Reply r, String text) {
        assertThat(r.isOk()).as("refused: " + text).isFalse();
        assertThat(r.errorMessage()).contains(text);
    }
}
