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
    /** More connections than the shm connector's default sessions per socket (64 on the fds branch). */
    static final int CONNECTIONS = 100;
    /** One-byte sendmsg pieces with 4 fds each for one frame: 8,000 fds if the bus kept them all. */
    static final int PIECES = 2000;
    /** More devices than any sane devices-per-container default. */
    static final int DEVICES = 5000;
    /** The default HELLO / SET_OWNER deadline on the fds branch is 10 s; this is how long the harness waits for it. */
    static final Duration SILENCE_BOUND = Duration.ofSeconds(60);

    private LimitAttacks() {}

    static Attack fdsInPieces() {
        return Attack.once("fds", "4", "one shm frame sent a byte at a time, 4 fds per piece, is refused at the protocol's fd count and the bus keeps none of the fds", lan -> {
            try (UnixConnection conn = UnixConnection.connect(lan.socket); EventFd e = EventFd.create()) {
                FrameChannel ch = new FrameChannel(conn);
                ch.send(new Message.Hello(Wire.VERSION, Wire.VERSION, "fd-pieces"), 1);
                assertThat(reply(ch)).as("HELLO").matches(r -> r != null && r.isOk());
                var before = Lan.openFdKinds();
                long count = Lan.openFds(), most = count;
                // A DEVSHM frame that claims the largest body, then its bytes one per sendmsg, each with 4 fds attached.
                conn.sendAll(RawClient.frame(Wire.MAX_FRAME, MessageType.DEVSHM.code(), 1, 2, new byte[0]));
                int sent = 0;
                try {
                    for (; sent < PIECES; sent++) {
                        conn.send(new byte[] {0}, 0, 1, e.fd(), e.fd(), e.fd(), e.fd());
                        if (sent % 100 == 0) most = Math.max(most, Lan.openFds());
                    }
                } catch (Errno.SysException closedByTheBus) {
                    // EPIPE or ECONNRESET: the bus ended the connection while we were still sending
                }
                most = Math.max(most, Lan.openFds());
                // The frame is still short of its claimed length: end our side, so a bus that kept reading gets
                // end of stream mid-frame rather than waiting for bytes that never come.
                if (sent == PIECES) conn.shutdownOutput();
                Message.Reply r = reply(ch);
                if (r != null) assertThat(r.isOk()).isFalse();
                if (r != null) assertThat(r.errorMessage()).as("the refusal names the limit").contains("fds");
                assertThat(most - count).as("fds the bus held at once for one frame (" + sent + " pieces sent)").isLessThanOrEqualTo(4 * Wire.MAX_FDS + 16);
                Lan.awaitFdsBackTo(before, "a frame with fds in " + sent + " pieces");
            }
            return Attack.Underway.DONE;
        });
    }

    static Attack manyConnections() {
        return Attack.once("fds", "4", "more connections to the container's socket than its session limit: the extra ones are refused naming the limit, and the socket serves again once they go", lan -> {
            List<RawClient> conns = new ArrayList<>();
            List<String> refusals = new ArrayList<>();
            try {
                for (int i = 0; i < CONNECTIONS; i++) {
                    RawClient c = new RawClient(lan.socket);
                    conns.add(c);
                    try {
                        Message.Reply r = c.request(new Message.Hello(Wire.VERSION, Wire.VERSION, "crowd-" + i));
                        if (!r.isOk()) refusals.add(r.errorMessage());
                    } catch (AssertionError closed) {
                        refusals.add("closed: " + closed.getMessage());
                    }
                }
                assertThat(refusals).as("connections refused of " + CONNECTIONS).isNotEmpty();
                assertThat(refusals).anySatisfy(m -> assertThat(m).contains("session"));
            } finally {
                conns.forEach(RawClient::close);
            }
            Lan.await("a new client is served again once the crowd left", () -> {
                try (BusClient c = BusClient.connect(lan.socket, "after-the-crowd")) {
                    return c.isConnected();
                } catch (RuntimeException refused) {
                    return false;
                }
            });
            return Attack.Underway.DONE;
        });
    }

    static Attack silentConnections() {
        return Attack.once("fds", "4", "a connection that never says HELLO, and a vhost-user one that never says SET_OWNER, are dropped at their deadline; the device then serves a real front-end", lan -> {
            Device v = lan.addNet("vu-silent");
            try (VhostUserBackend be = VhostUserBackend.serve(v, lan.vhostSocket("vu-silent"));
                 RawClient silent = new RawClient(lan.socket); FrontEnd silentFe = new FrontEnd(be.socket())) {
                // Both wait at once: each deadline is the bus's, counted from the connection.
                CompletableFuture<Boolean> shm = CompletableFuture.supplyAsync(() -> {
                    try {
                        return silent.closedByBus();
                    } catch (Exception e) {
                        return true;          // a reset connection is dropped too
                    }
                });
                CompletableFuture<Boolean> vu = CompletableFuture.supplyAsync(silentFe::closedByPeer);
                assertThat(shm.get(SILENCE_BOUND.toSeconds(), TimeUnit.SECONDS)).as("the bus dropped the silent shm connection").isTrue();
                assertThat(vu.get(SILENCE_BOUND.toSeconds(), TimeUnit.SECONDS)).as("the back-end dropped the silent front-end").isTrue();
                try (FrontEnd fe = new FrontEnd(be.socket())) {
                    fe.send(Request.GET_FEATURES);
                    assertThat(fe.replyU64(Request.GET_FEATURES)).as("a real front-end is served after the silent one").isNotZero();
                }
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack hugeRegion() {
        return Attack.once("fds", "4", "a 40 TiB sparse memfd shared as one region is refused by both connectors naming the mapped-bytes limit", lan -> {
            long huge = 40L << 40;
            int fd = PeerSideFds.memfd("40TiB", huge, PeerSideFds.SEAL_SHRINK | PeerSideFds.SEAL_SEAL);
            Device d = lan.addNet("hoarder"), v = lan.addNet("vu-hoarder");
            try (RawClient raw = RawClient.greeted(lan.socket)) {
                ok(raw.request(new Message.DevOpen(d.devid())));
                refused(raw.request(new Message.DevShm(d.devid(), 0, huge, 0), fd), "bytes");
                try (VhostUserBackend be = VhostUserBackend.serve(v, lan.vhostSocket("vu-hoarder")); FrontEnd fe = new FrontEnd(be.socket())) {
                    fe.sendU64(Request.SET_PROTOCOL_FEATURES, ProtocolFeature.REPLY_ACK.mask());
                    fe.send(Request.SET_MEM_TABLE, NEED_REPLY, FdAttacks.memTable(huge), fd);
                    assertThat(fe.replyU64(Request.SET_MEM_TABLE)).as("a 40 TiB region is refused").isNotZero();
                    assertThat(be.session().lastError()).contains("bytes");
                }
            } finally {
                PeerSideFds.close(fd);
            }
            lan.unplug(d, Lan.WAIT);
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack manyDevices() {
        return Attack.once("fds", "4", "adding devices past the container's limit is refused naming the limit", lan -> {
            List<Device> made = new ArrayList<>();
            String refusal = null;
            try {
                for (int i = 0; i < DEVICES && refusal == null; i++) {
                    try {
                        made.add(lan.container.addDevice(EchoModel.TYPE));
                    } catch (BusException e) {
                        refusal = e.getMessage();
                    }
                }
                assertThat(refusal).as("refused before " + DEVICES + " devices (" + made.size() + " added)").isNotNull().contains("devices");
            } finally {
                for (Device d : made) lan.container.removeDevice(d.devid());
            }
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
