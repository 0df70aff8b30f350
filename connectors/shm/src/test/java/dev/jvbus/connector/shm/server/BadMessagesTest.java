package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.connector.shm.protocol.MessageType;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.EchoModel;
import dev.jvbus.core.testing.FdLedger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Malformed requests over a real socket: each gets its error reply, the same session then does a
 * successful request, and a second client holding a device is unaffected throughout. Around every
 * refused request the process's fd table is checked: every fd the request carried was closed, and
 * no other fd (a sentinel) was.
 */
class BadMessagesTest {
    private static final DevId DEV1 = new DevId(1), DEV2 = new DevId(2);

    @TempDir
    Path dir;
    private final FdLedger fds = new FdLedger();
    @RegisterExtension
    final ShmFixture fx = new ShmFixture();
    private Container c;
    private RawClient bad;
    private RawClient bystander;

    @BeforeEach
    void setUp() throws Exception {
        c = fx.container("bad", 2);
        bad = RawClient.greeted(fx.socket("bad"));
        assertThat(bad.request(new Message.DevOpen(DEV1)).isOk()).isTrue();
        bystander = RawClient.greeted(fx.socket("bad"));
        assertThat(bystander.request(new Message.DevOpen(DEV2)).isOk()).isTrue();
    }

    @AfterEach
    void tearDown() throws Exception {
        // The bystander's session never noticed: its device still answers.
        Reply echo = bystander.request(new Message.DevCall(DEV2, BusCall.MODEL_BASE + EchoModel.CALL_ECHO, "still here".getBytes(StandardCharsets.UTF_8)));
        assertThat(echo.isOk()).as(echo.toString()).isTrue();
        assertThat(new String(echo.payload(), StandardCharsets.UTF_8)).isEqualTo("still here");
        bad.close();
        bystander.close();
        fds.close();
    }

    /** The same session goes on: a well-formed request succeeds after the error. */
    private void sessionCarriesOn() throws Exception {
        Reply r = bad.request(new Message.DevCall(DEV1, BusCall.GET_STATUS.func, new byte[0]));
        assertThat(r.isOk()).as(r.toString()).isTrue();
    }

    private static void assertError(Reply r, ErrorCode code, String text) {
        assertThat(r.error()).as(r.toString()).isEqualTo(code);
        assertThat(r.errorMessage()).contains(text);
    }

    /** Sends a request the bus must refuse; checks that it closed every fd the request carried, and nothing else. */
    private Reply refused(FdLedger.Request<Reply> request) throws Exception {
        Reply r = fds.around("a refused request", request);
        assertThat(r.isOk()).as("refused: " + r).isFalse();
        return r;
    }

    @Test
    void aTruncatedBodyIsABadMessage() throws Exception {
        Reply r = refused(() -> bad.raw(Wire.HEADER + 2, MessageType.DEVOPEN.code(), 0, new byte[] {1, 0}));
        assertError(r, ErrorCode.BAD_MESSAGE, "DEVOPEN truncated: devid needs 4 bytes, 2 left");
        sessionCarriesOn();
    }

    @Test
    void trailingBytesAreABadMessage() throws Exception {
        Reply r = refused(() -> bad.raw(Wire.HEADER + 6, MessageType.DEVCLOSE.code(), 0, new byte[] {1, 0, 0, 0, 9, 9}));
        assertError(r, ErrorCode.BAD_MESSAGE, "DEVCLOSE has 2 unexpected trailing bytes");
        sessionCarriesOn();
    }

    @Test
    void aTruncatedBusCallPayloadIsABadMessage() throws Exception {
        Reply r = refused(() -> bad.request(new Message.DevCall(DEV1, BusCall.SET_QUEUE.func, new byte[] {0, 0, 8})));
        assertError(r, ErrorCode.BAD_MESSAGE, "SET_QUEUE payload truncated");
        sessionCarriesOn();
    }

    @Test
    void anUnknownTypeIsNamed() throws Exception {
        Reply r = refused(() -> bad.raw(Wire.HEADER + 3, 0x55, 0, new byte[] {1, 2, 3}));
        assertError(r, ErrorCode.UNKNOWN_TYPE, "unknown message type 0x55");
        sessionCarriesOn();
    }

    @Test
    void aRequestBeforeHelloIsRefused() throws Exception {
        try (RawClient fresh = new RawClient(fx.socket("bad"))) {
            // The bus has accepted it (its end of the socket is open) before the fd table is first looked at.
            ShmFixture.eventually("the fresh connection has its session", () -> fx.shm.socket("bad").orElseThrow().sessionCount() == 3);
            assertError(refused(() -> fresh.request(new Message.Enumerate())), ErrorCode.HELLO_FIRST, "send HELLO first");
            assertError(refused(() -> fresh.request(new Message.Hello(7, 9, "future"))), ErrorCode.UNSUPPORTED_VERSION, "speaks versions " + Wire.MIN_VERSION + ".." + Wire.VERSION);
            assertThat(fresh.request(new Message.Hello(1, 9, "now")).isOk()).isTrue();
            assertThat(fresh.request(new Message.Enumerate()).isOk()).isTrue();
        }
    }

    @Test
    void aMissingFdIsBadFds() throws Exception {
        ByteBuffer body = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putLong(0).putLong(4096).putLong(0);
        Reply r = refused(() -> bad.raw(Wire.HEADER + 28, MessageType.DEVSHM.code(), 0, body.array()));
        assertError(r, ErrorCode.BAD_FDS, "DEVSHM carries 1 fds, got 0");
        sessionCarriesOn();
    }

    @Test
    void unexpectedFdsAreRefusedAndClosed() throws Exception {
        try (EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            long before = OpenFds.count("eventfd");
            // ENUMERATE carries no fds; these two must be closed by the bus, not kept.
            Reply r = refused(() -> bad.raw(Wire.HEADER, MessageType.ENUMERATE.code(), 2, new byte[0], a.fd(), b.fd()));
            assertError(r, ErrorCode.BAD_FDS, "ENUMERATE carries 0 fds, got 2");
            assertThat(OpenFds.count("eventfd")).as("eventfds open in this process after the refusal").isEqualTo(before);
        }
        sessionCarriesOn();
    }

    @Test
    void aSocketWhereAMemfdBelongsIsBadFds() throws Exception {
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            long before = OpenFds.count("socket:");
            Reply r = refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 0), pair.first().fd()));
            assertError(r, ErrorCode.BAD_FDS, "DEVSHM fd is a SOCKET, not a memfd or regular file");
            assertThat(OpenFds.count("socket:")).isEqualTo(before);
        }
        sessionCarriesOn();
    }

    @Test
    void aSocketWhereAnEventFdBelongsIsBadFds() throws Exception {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd call = EventFd.create()) {
            Reply r = refused(() -> bad.request(new Message.Signal(DEV1, 0), pair.first().fd(), call.fd()));
            assertError(r, ErrorCode.BAD_FDS, "SIGNAL fd 0 (kick) is a SOCKET, not an eventfd");
        }
        sessionCarriesOn();
    }

    @Test
    void aRegularTempFileIsRefusedBecauseOnlyASealedMemfdCannotShrinkUnderTheBus() throws Exception {
        Path file = dir.resolve("region.bin");
        Files.write(file, new byte[8192]);
        try (OwnedFd fd = HostileFds.openReadWrite(file)) {
            Reply r = refused(() -> bad.request(new Message.DevShm(DEV1, 0x10000, 4096, 4096), fd.number()));
            assertError(r, ErrorCode.BAD_FDS, "the bus maps only a memfd sealed with F_SEAL_SHRINK and F_SEAL_SEAL");
            assertThat(r.errorMessage()).contains("SIGBUS");
        }
        sessionCarriesOn();
    }

    @Test
    void anOPathFdAndAReadOnlyFdOfAFileTheClientMayNotWriteAreRefusedAndTheFileIsUnchanged() throws Exception {
        Path secret = dir.resolve("secret");
        byte[] content = HostileFds.readOnlyFile(secret, "another user's key".repeat(500));
        try (OwnedFd path = HostileFds.openPath(secret); OwnedFd readOnly = HostileFds.openReadOnly(secret)) {
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 0), path.number())), ErrorCode.BAD_FDS,
                    "DEVSHM fd was opened O_PATH");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 0), readOnly.number())), ErrorCode.BAD_FDS,
                    "DEVSHM fd was opened O_RDONLY, not O_RDWR");
        }
        assertThat(c.device(DEV1).holder()).isPresent();
        assertThat(Files.readAllBytes(secret)).as("the file is unchanged").isEqualTo(content);
        sessionCarriesOn();
    }

    @Test
    void anUnsealedMemfdAndOneSealedWithoutSealSealAreRefused() throws Exception {
        try (OwnedFd unsealed = HostileFds.memfd("unsealed", 8192, 0);
             OwnedFd notFinal = HostileFds.memfd("not-final", 8192, HostileFds.SEAL_SHRINK)) {
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 0), unsealed.number())), ErrorCode.BAD_FDS,
                    "DEVSHM fd is not sealed with F_SEAL_SHRINK");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 0), notFinal.number())), ErrorCode.BAD_FDS,
                    "DEVSHM fd is sealed with F_SEAL_SHRINK but not F_SEAL_SEAL");
            assertThat(HostileFds.truncate(unsealed.number(), 4096)).as("the bus added no seal on the client's behalf").isZero();
        }
        sessionCarriesOn();
    }

    @Test
    void aFrameThatGathersFdsOverManySendsIsRefusedOnceItCarriesMoreThanItsTypeAndHoldsNone() throws Exception {
        try (EventFd a = EventFd.create()) {
            // DEVOPEN carries no fds: sent one byte and four fds per sendmsg, its 16 bytes would bring 64.
            byte[] frame = RawClient.frame(Wire.HEADER + 4, MessageType.DEVOPEN.code(), 0, 777, new byte[] {2, 0, 0, 0});
            Reply r = refused(() -> {
                for (byte octet : frame) bad.channel.sendFrame(new byte[] {octet}, a.fd(), a.fd(), a.fd(), a.fd());
                return bad.replyTo(777);
            });
            assertError(r, ErrorCode.BAD_FDS, "carried more fds than its type allows");
        }
        sessionCarriesOn();
    }

    @Test
    void regionsOfImpossibleSizesAreRefused() throws Exception {
        try (Memfd m = Memfd.create("regions", 16 * 4096)) {
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 0, 0), m.fd())), ErrorCode.BAD_REGION,
                    "size must be positive, got 0");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 17 * 4096, 0), m.fd())), ErrorCode.BAD_REGION,
                    "runs past the end of the 65536-byte file");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0, 4096, 15 * 4096 + 1), m.fd())), ErrorCode.BAD_REGION,
                    "must be a non-negative multiple of 4096");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, -4096, 8192, 0), m.fd())), ErrorCode.BAD_REGION,
                    "wraps the address space");

            assertThat(bad.request(new Message.DevShm(DEV1, 0x100000, 8 * 4096, 0), m.fd()).isOk()).isTrue();
            assertError(refused(() -> bad.request(new Message.DevShm(DEV1, 0x104000, 8 * 4096, 8 * 4096), m.fd())), ErrorCode.BAD_REGION,
                    "overlaps the region at 0x100000+32768");
            assertThat(bad.request(new Message.DevShm(DEV1, 0x108000, 8 * 4096, 8 * 4096), m.fd()).isOk())
                    .as("an adjacent region is fine").isTrue();
        }
        sessionCarriesOn();
    }

    @Test
    void aDoorbellForANonexistentDeviceOrQueueIsRefusedAndBothFdsClosed() throws Exception {
        try (EventFd kick = EventFd.create(); EventFd call = EventFd.create()) {
            assertError(refused(() -> bad.request(new Message.Signal(DEV2, 0), kick.fd(), call.fd())), ErrorCode.NOT_OPEN, "not open");
            assertError(refused(() -> bad.request(new Message.Signal(DEV1, 99), kick.fd(), call.fd())), ErrorCode.DEVICE_ERROR, "99");
            assertError(refused(() -> bad.request(new Message.DevShm(DEV2, 0, 4096, 0), kick.fd())), ErrorCode.NOT_OPEN, "not open");
        }
        sessionCarriesOn();
    }

    @Test
    void callsOnADeviceNotOpenHereAreNotOpen() throws Exception {
        assertError(refused(() -> bad.request(new Message.DevCall(DEV2, BusCall.GET_STATUS.func, new byte[0]))), ErrorCode.NOT_OPEN,
                "device 2 is not open");
        assertError(refused(() -> bad.request(new Message.DevOpen(DEV2))), ErrorCode.BUSY, "already open by shm client 'raw'");
        assertError(refused(() -> bad.request(new Message.DevCall(DEV1, 0x42, new byte[0]))), ErrorCode.BAD_MESSAGE,
                "unknown bus call 0x42");
        assertError(refused(() -> bad.request(new Message.DevCall(DEV1, BusCall.MODEL_BASE + EchoModel.CALL_FAIL, new byte[0]))),
                ErrorCode.DEVICE_ERROR, "asked to fail");
        sessionCarriesOn();
    }
}
