package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusClientException;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.connector.shm.protocol.MessageType;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** What ends a connection (a broken frame, a refused uid) and what isolates containers. */
class ConnectionRulesTest {
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();



    @Test
    void theRuntimeDirectoryAndSocketArePrivate() {
        fx.container("priv", 1);
        assertThat(FdStat.ofPath(fx.dir).permissions()).isEqualTo(0700);
        FdStat sock = FdStat.ofPath(fx.socket("priv"));
        assertThat(sock.kind()).isEqualTo(FdStat.Kind.SOCKET);
        assertThat(sock.permissions()).isEqualTo(0600);
    }

    @Test
    void aFrameLengthOfFiveIsFatalForThatConnectionOnly() throws Exception {
        brokenFrameClosesOnlyItsConnection(5);
    }

    @Test
    void aFrameLengthOfOneMebibyteIsFatalForThatConnectionOnly() throws Exception {
        brokenFrameClosesOnlyItsConnection(1 << 20);
    }

    private void brokenFrameClosesOnlyItsConnection(int length) throws Exception {
        fx.container("frames", 1);
        try (RawClient other = RawClient.greeted(fx.socket("frames"));
             RawClient broken = RawClient.greeted(fx.socket("frames"))) {
            assertThat(broken.request(new Message.DevOpen(new DevId(1))).isOk()).isTrue();

            Reply r = broken.raw(length, MessageType.ENUMERATE.code(), 0, new byte[0]);
            assertThat(r.error()).isEqualTo(ErrorCode.BAD_FRAME);
            assertThat(r.errorMessage()).contains("frame length " + length + " outside 12..65536; closing the connection");
            assertThat(broken.closedByBus()).as("the bus closed the broken connection").isTrue();

            // The device the broken client held is free again, and everyone else is served.
            ShmFixture.eventually("device 1 released", () -> fx.bus.requireContainer("frames").device(new DevId(1)).holder().isEmpty());
            assertThat(other.request(new Message.DevOpen(new DevId(1))).isOk()).isTrue();
            try (BusClient fresh = BusClient.connect(fx.socket("frames"), "fresh")) {
                assertThat(fresh.enumerate()).hasSize(1);
            }
        }
    }

    @Test
    void aPeerWhoseUidIsNotAllowedIsDeniedWithAReason() throws Exception {
        int me = PeerCredentials.ofThisProcess().uid();
        fx.bus.createContainer("others");
        fx.shm.expose("others", AllowedPeers.uids(me + 4242));

        assertThatThrownBy(() -> BusClient.connect(fx.socket("others"), "intruder"))
                .isInstanceOfSatisfying(BusClientException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.DENIED);
                    assertThat(e.connectionLost()).isTrue();
                })
                .hasMessageContaining("uid " + me + " is not allowed to use container 'others'");

        try (RawClient raw = new RawClient(fx.socket("others"))) {
            Message m = raw.next();
            assertThat(m).isInstanceOfSatisfying(Reply.class, r -> assertThat(r.error()).isEqualTo(ErrorCode.DENIED));
            assertThat(raw.lastSeq()).isZero();
            assertThat(raw.closedByBus()).isTrue();
        }
        assertThat(fx.shm.socket("others").orElseThrow().sessionCount()).isZero();
    }

    @Test
    void aDevidOfAnotherContainerIsIndistinguishableFromOneThatNeverExisted() throws Exception {
        Container a = fx.container("tenant-a", 1);   // devid 1
        Container b = fx.container("tenant-b", 3);   // devids 1, 2, 3
        assertThat(b.contains(new DevId(3))).isTrue();
        assertThat(a.contains(new DevId(3))).isFalse();

        try (RawClient inA = RawClient.greeted(fx.socket("tenant-a"))) {
            Reply otherContainers = inA.request(new Message.DevOpen(new DevId(3)));
            Reply neverExisted = inA.request(new Message.DevOpen(new DevId(7)));
            assertThat(otherContainers.error()).isEqualTo(ErrorCode.NO_SUCH_DEVICE);
            assertThat(neverExisted.error()).isEqualTo(ErrorCode.NO_SUCH_DEVICE);
            assertThat(otherContainers.errorMessage()).isEqualTo("no such device 3 in container 'tenant-a'");
            assertThat(neverExisted.errorMessage()).isEqualTo("no such device 7 in container 'tenant-a'");
            // Same template: the only difference is the number the client itself sent.
            assertThat(otherContainers.errorMessage().replace("3", "#")).isEqualTo(neverExisted.errorMessage().replace("7", "#"));
            // Calls on them say the same "not open" either way.
            Reply call3 = inA.request(new Message.DevCall(new DevId(3), 3, new byte[0]));
            Reply call7 = inA.request(new Message.DevCall(new DevId(7), 3, new byte[0]));
            assertThat(call3.errorMessage().replace("3", "#")).isEqualTo(call7.errorMessage().replace("7", "#"));

            Message.DeviceList list = dev.jvbus.connector.shm.protocol.Codec.decodeDeviceList(inA.request(new Message.Enumerate()).payload());
            assertThat(list.devices()).containsExactly(new Message.DeviceEntry(new DevId(1), "test-echo"));
        }
        assertThat(b.device(new DevId(3)).holder()).isEmpty();
    }

    @Test
    void aStaleSocketIsReplacedButALiveOneIsNot() throws Exception {
        fx.container("live", 0);
        fx.bus.createContainer("stale");
        // A socket file nobody listens on, as a crashed bus leaves it: bind, move the file, close.
        try (UnixListener dead = UnixListener.bind(fx.dir.resolve("tmp.sock"), 1)) {
            Files.move(fx.dir.resolve("tmp.sock"), fx.socket("stale"));
        }
        assertThat(FdStat.ofPath(fx.socket("stale")).kind()).isEqualTo(FdStat.Kind.SOCKET);
        fx.shm.expose("stale");
        try (BusClient c = BusClient.connect(fx.socket("stale"), "after-crash")) {
            assertThat(c.container()).isEqualTo("stale");
        }
        assertThatThrownBy(() -> RuntimeDirectory.clearStaleSocket(fx.socket("live")))
                .hasMessageContaining("is served by another bus");
        try (BusClient c = BusClient.connect(fx.socket("live"), "still")) {
            assertThat(c.container()).isEqualTo("live");
            assertThat(c.version()).isEqualTo(Wire.VERSION);
        }
    }
}
