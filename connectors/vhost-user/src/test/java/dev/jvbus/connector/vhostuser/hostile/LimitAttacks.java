package dev.jvbus.connector.vhostuser.hostile;

import static dev.jvbus.connector.vhostuser.hostile.FdAttacks.NEED_REPLY;
import static dev.jvbus.connector.vhostuser.hostile.FdAttacks.ok;
import static dev.jvbus.connector.vhostuser.hostile.FdAttacks.refused;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.MessageType;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.connector.shm.server.RawClient;
import dev.jvbus.connector.vhostuser.FrontEnd;
import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.connector.vhostuser.VhostUserSession;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.PeerSideFds;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.EchoModel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Attacks on what the bus spends for a tenant (point 4): fds piled onto one frame, connections,
 * connections that never introduce themselves, address space, devices. Each must meet a limit that
 * refuses that request or that connection with a message naming the limit, while every other tenant
 * (the pair among them) carries on.
 */
final class LimitAttacks {
    /** More connections than the harness's shm sessions per socket ({@link Lan#SHM_LIMITS}: 16). */
    static final int CONNECTIONS = 24;
    /** One-byte sendmsg pieces with 4 fds each for one frame: 8,000 fds if the bus kept them all. */
    static final int PIECES = 2000;
    /** How long the harness waits for a silent connection to be dropped: the deadline ({@link Lan#HANDSHAKE}) and room for a busy machine. */
    static final Duration SILENCE_BOUND = Duration.ofSeconds(60);

    private LimitAttacks() {}

    static Attack fdsInPieces() {
        return Attack.now("4", "one shm frame and one vhost-user message sent a byte at a time, 4 fds per piece, are refused naming the request's own fd count; the bus keeps none of the fds and both sessions go on", lan -> {
            Device v = lan.addNet("vu-fd-pieces");
            try (UnixConnection conn = UnixConnection.connect(lan.socket); EventFd e = EventFd.create();
                 VhostUserBackend be = lan.serve(v, "vu-fd-pieces"); FrontEnd fe = new FrontEnd(be.socket())) {
                FrameChannel ch = new FrameChannel(conn);
                ch.send(new Message.Hello(Wire.VERSION, Wire.VERSION, "fd-pieces"), 1);
                assertThat(reply(ch)).as("HELLO").matches(r -> r != null && r.isOk());
                fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
                fe.send(Request.SET_OWNER);
                fe.send(Request.GET_FEATURES);
                fe.replyU64(Request.GET_FEATURES);
                var before = Lan.openFdKinds();
                long count = Lan.openFds(), most = count;

                // shm: a DEVSHM frame (its type carries 1 fd) of PIECES body bytes, one per sendmsg, each with 4 fds attached.
                conn.sendAll(RawClient.frame(Wire.HEADER + PIECES, MessageType.DEVSHM.code(), 1, 2, new byte[0]));
                for (int i = 0; i < PIECES; i++) {
                    conn.send(new byte[] {0}, 0, 1, e.fd(), e.fd(), e.fd(), e.fd());
                    if (i % 100 == 0) most = Math.max(most, Lan.openFds());
                }
                Message.Reply r = reply(ch);
                assertThat(r).as("the bus answers the whole frame").isNotNull();
                assertThat(r.error()).as(r.toString()).isEqualTo(ErrorCode.BAD_FDS);
                assertThat(r.errorMessage()).as("the refusal names the limit")
                        .contains("carried more fds than its type allows (limit: 1 fds for this type, at most " + Wire.MAX_FDS + " per frame)")
                        .contains("every fd it carried was closed");
                ch.send(new Message.Enumerate(), 3);
                assertThat(reply(ch)).as("the session goes on: ENUMERATE").matches(x -> x != null && x.isOk());

                // vhost-user: a SET_MEM_TABLE (at most 8 fds) whose 264-byte payload comes a byte at a time, 4 fds per byte.
                int size = 8 + 8 * 32;
                fe.sendRaw(dev.jvbus.connector.vhostuser.protocol.Codec.payload(dev.jvbus.connector.vhostuser.protocol.Wire.HEADER)
                        .putInt(Request.SET_MEM_TABLE.id()).putInt(dev.jvbus.connector.vhostuser.protocol.Wire.VERSION | NEED_REPLY).putInt(size).flip());
                for (int i = 0; i < size; i++) {
                    fe.conn.send(new byte[] {i == 0 ? (byte) 8 : 0}, 0, 1, e.fd(), e.fd(), e.fd(), e.fd());
                    if (i % 50 == 0) most = Math.max(most, Lan.openFds());
                }
                assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("the message with too many fds is refused").isNotZero();
                assertThat(be.session().lastError()).as("the refusal names the limit")
                        .contains("carried more fds than it may (limit: " + dev.jvbus.connector.vhostuser.protocol.Wire.MAX_REGIONS + " for this request")
                        .contains("every fd it carried was closed");
                fe.send(Request.GET_FEATURES);
                assertThat(fe.replyU64(Request.GET_FEATURES)).as("the vhost-user session goes on").isNotZero();

                most = Math.max(most, Lan.openFds());
                assertThat(most - count).as("fds the bus held at once for one frame of " + PIECES + " pieces, 4 fds each")
                        .isLessThanOrEqualTo(2L * dev.jvbus.connector.vhostuser.protocol.Wire.MAX_REGIONS + 16);
                Lan.awaitFdsBackTo(before, "a shm frame and a vhost-user message with fds in pieces");
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack manyConnections() {
        return Attack.now("4", "more connections to the container's socket than its session limit: exactly the extra ones are refused naming the limit, and the socket serves again once they go", lan -> {
            int limit = Lan.SHM_LIMITS.sessionsPerSocket();
            Lan.await("only the pair's and the sink's sessions are left", () -> lan.sessions() == lan.settledSessions);
            var before = Lan.openFdKinds();
            List<RawClient> conns = new ArrayList<>();
            List<String> refusals = new ArrayList<>();
            int served = 0;
            try {
                for (int i = 0; i < CONNECTIONS; i++) {
                    RawClient c = new RawClient(lan.socket);
                    conns.add(c);
                    try {
                        c.channel.send(new Message.Hello(Wire.VERSION, Wire.VERSION, "crowd-" + i), 1);
                    } catch (Errno.SysException refusedFirst) {
                        // EPIPE: the bus refused and closed before our HELLO went out; its reply is still there to read
                    }
                    Message.Reply r = (Message.Reply) c.next();
                    if (r.isOk()) {
                        served++;
                        continue;
                    }
                    assertThat(r.error()).as(r.toString()).isEqualTo(ErrorCode.LIMIT);
                    refusals.add(r.errorMessage());
                    assertThat(c.closedByBus()).as("a refused connection is closed").isTrue();
                }
                assertThat(served).as("crowd connections served beside the " + lan.settledSessions + " settled sessions")
                        .isEqualTo(limit - lan.settledSessions);
                assertThat(refusals).as("connections refused of " + CONNECTIONS).hasSize(CONNECTIONS - served)
                        .allSatisfy(m -> assertThat(m).contains("(limit: ShmLimits.sessionsPerSocket = " + limit + ")"));
            } finally {
                conns.forEach(RawClient::close);
            }
            Lan.await("the crowd's sessions end", () -> lan.sessions() == lan.settledSessions);
            try (BusClient c = BusClient.connect(lan.socket, "after-the-crowd")) {
                assertThat(c.isConnected()).as("a new client is served again once the crowd left").isTrue();
            }
            Lan.await("its session ends", () -> lan.sessions() == lan.settledSessions);
            Lan.awaitFdsBackTo(before, CONNECTIONS + " connections, " + (CONNECTIONS - served) + " of them refused");
            return Attack.Underway.DONE;
        });
    }

    static Attack silentConnections() {
        return Attack.now("4", "a connection that never says HELLO, and a vhost-user one that never says SET_OWNER, are dropped at their deadline naming it; the device then serves a real front-end", lan -> {
            Device v = lan.addNet("vu-silent");
            long deadline = Lan.HANDSHAKE.toMillis();
            try (VhostUserBackend be = lan.serve(v, "vu-silent")) {
                var before = Lan.openFdKinds();
                try (RawClient silent = new RawClient(lan.socket); FrontEnd silentFe = new FrontEnd(be.socket())) {
                    Lan.await("the back-end took the silent front-end", () -> be.session() != null);
                    VhostUserSession session = be.session();
                    // Both wait at once: each deadline is the bus's, counted from the connection.
                    CompletableFuture<Message> shm = CompletableFuture.supplyAsync(() -> {
                        try {
                            return silent.next();
                        } catch (Exception e) {
                            throw new AssertionError(e);
                        }
                    });
                    CompletableFuture<Boolean> vu = CompletableFuture.supplyAsync(silentFe::closedByPeer);
                    assertThat(shm.get(SILENCE_BOUND.toSeconds(), TimeUnit.SECONDS)).as("the bus's last word to the silent shm connection")
                            .isInstanceOfSatisfying(Message.Reply.class, r -> {
                                assertThat(r.error()).isEqualTo(ErrorCode.LIMIT);
                                assertThat(r.errorMessage()).contains("no HELLO within " + deadline + " ms (limit: ShmLimits.helloTimeout)");
                            });
                    assertThat(silent.closedByBus()).as("the bus dropped the silent shm connection").isTrue();
                    assertThat(vu.get(SILENCE_BOUND.toSeconds(), TimeUnit.SECONDS)).as("the back-end dropped the silent front-end").isTrue();
                    assertThat(session.lastError()).contains("no SET_OWNER within " + deadline + " ms (limit: VhostUserLimits.ownerTimeout)");
                }
                try (FrontEnd fe = new FrontEnd(be.socket())) {
                    fe.send(Request.SET_OWNER);
                    fe.send(Request.GET_FEATURES);
                    assertThat(fe.replyU64(Request.GET_FEATURES)).as("a real front-end is served after the silent one").isNotZero();
                }
                Lan.await("the real front-end's session ends", () -> be.session() == null);
                Lan.await("the silent shm session ends", () -> lan.sessions() == lan.settledSessions);
                Lan.awaitFdsBackTo(before, "two silent connections dropped at their deadline and a real front-end");
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack hugeRegion() {
        return Attack.now("4", "a 40 TiB sparse memfd shared as one region is refused by both connectors naming the mapped-bytes limit, keeps no fd, and a region of sane size is then accepted", lan -> {
            long huge = 40L << 40;
            int fd = PeerSideFds.memfd("40TiB", huge, PeerSideFds.SEAL_SHRINK | PeerSideFds.SEAL_SEAL);
            Device d = lan.addNet("hoarder"), v = lan.addNet("vu-hoarder");
            try (RawClient raw = RawClient.greeted(lan.socket); Memfd sane = Memfd.create("sane", 16 * FdAttacks.PAGE)) {
                ok(raw.request(new Message.DevOpen(d.devid())));
                try (VhostUserBackend be = lan.serve(v, "vu-hoarder"); FrontEnd fe = new FrontEnd(be.socket())) {
                    fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
                    fe.send(Request.SET_OWNER);
                    fe.send(Request.GET_FEATURES);
                    fe.replyU64(Request.GET_FEATURES);
                    var before = Lan.openFdKinds();
                    Message.Reply r = raw.request(new Message.DevShm(d.devid(), 0, huge, 0), fd);
                    assertThat(r.error()).as(r.toString()).isEqualTo(ErrorCode.LIMIT);
                    assertThat(r.errorMessage()).contains(huge + " more bytes").contains("(limit: ShmLimits.bytesPerSession; 0 mapped now)");
                    fe.send(Request.SET_MEM_TABLE, NEED_REPLY, FdAttacks.memTable(huge), fd);
                    assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("a 40 TiB region is refused").isNotZero();
                    assertThat(be.session().lastError()).contains("(limit: VhostUserLimits.bytesPerSession; this region claims " + huge + ")");
                    Lan.awaitFdsBackTo(before, "a 40 TiB region refused by both connectors");
                    // The sessions go on: a region of sane size is taken by both.
                    ok(raw.request(new Message.DevShm(d.devid(), 0x10_0000, 16 * FdAttacks.PAGE, 0), sane.fd()));
                    fe.send(Request.SET_MEM_TABLE, NEED_REPLY, FdAttacks.memTable(16 * FdAttacks.PAGE), sane.fd());
                    assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("a 64 KiB region is taken").isZero();
                }
                ok(raw.request(new Message.DevClose(d.devid())));
            } finally {
                PeerSideFds.close(fd);
            }
            lan.unplug(d, Lan.WAIT);
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack manyDevices() {
        return Attack.now("4", "adding devices past the container's limit is refused naming the limit, and room comes back as they go", lan -> {
            int limit = lan.container.deviceLimit();
            assertThat(limit).as("the harness's devices-per-container setting").isEqualTo(Lan.DEVICES);
            int present = lan.container.devices().size();
            List<Device> made = new ArrayList<>();
            String refusal = null;
            try {
                for (int i = 0; i <= limit && refusal == null; i++) {
                    try {
                        made.add(lan.container.addDevice(EchoModel.TYPE));
                    } catch (BusException e) {
                        refusal = e.getMessage();
                    }
                }
                assertThat(refusal).as("refused at the limit (" + made.size() + " added beside " + present + ")").isNotNull()
                        .contains("already holds " + limit + " devices (limit: devices per container = " + limit);
                assertThat(made).as("devices added before the refusal").hasSize(limit - present);
            } finally {
                for (Device d : made) lan.container.removeDevice(d.devid());
            }
            Device again = lan.container.addDevice(EchoModel.TYPE);
            lan.container.removeDevice(again.devid());
            return Attack.Underway.DONE;
        });
    }

    /** The next reply on a raw channel, or null if the bus closed it. */
    private static Message.Reply reply(FrameChannel ch) throws Exception {
        while (true) {
            switch (ch.read()) {
                case FrameChannel.EndOfStream end -> { return null; }
                case FrameChannel.BrokenFrame b -> { return null; }
                case FrameChannel.Frame f -> {
                    try (f) {
                        if (Codec.decode(f.header(), f.body(), f.fds().count()) instanceof Message.Reply r) return r;
                    }
                }
            }
        }
    }
}
