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
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.EchoModel;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Malformed requests over a real socket: each gets its error reply, the same session then does a
 * successful request, and a second client holding a device is unaffected throughout.
 */
class BadMessagesTest {
    private static final DevId DEV1 = new DevId(1), DEV2 = new DevId(2);

    private ShmFixture fx;
    private Container c;
    private RawClient bad;
    private RawClient bystander;

    @BeforeEach
    void setUp() throws Exception {
        fx = new ShmFixture();
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
        fx.close();
    }

    /** The same session goes on: a well-formed request succeeds after the error. */
    private void sessionCarriesOn() throws Exception {
        Reply r = bad.request(new Message.DevCall(DEV1, BusCall.GET_STATUS, new byte[0]));
        assertThat(r.isOk()).as(r.toString()).isTrue();
    }

    private static void assertError(Reply r, ErrorCode code, String text) {
        assertThat(r.error()).as(r.toString()).isEqualTo(code);
        assertThat(r.errorMessage()).contains(text);
    }

    @Test
    void aTruncatedBodyIsABadMessage() throws Exception {
        Reply r = bad.raw(Wire.HEADER + 2, MessageType.DEVOPEN.code(), 0, new byte[] {1, 0});
        assertError(r, ErrorCode.BAD_MESSAGE, "DEVOPEN truncated: devid needs 4 bytes, 2 left");
        sessionCarriesOn();
    }

    @Test
    void trailingBytesAreABadMessage() throws Exception {
        Reply r = bad.raw(Wire.HEADER + 6, MessageType.DEVCLOSE.code(), 0, new byte[] {1, 0, 0, 0, 9, 9});
        assertError(r, ErrorCode.BAD_MESSAGE, "DEVCLOSE has 2 unexpected trailing bytes");
        sessionCarriesOn();
    }

    @Test
    void aTruncatedBusCallPayloadIsABadMessage() throws Exception {
        Reply r = bad.request(new Message.DevCall(DEV1, BusCall.SET_QUEUE, new byte[] {0, 0, 8}));
        assertError(r, ErrorCode.BAD_MESSAGE, "SET_QUEUE payload truncated");
        sessionCarriesOn();
    }

    @Test
    void anUnknownTypeIsNamed() throws Exception {
        Reply r = bad.raw(Wire.HEADER + 3, 0x55, 0, new byte[] {1, 2, 3});
        assertError(r, ErrorCode.UNKNOWN_TYPE, "unknown message type 0x55");
        sessionCarriesOn();
    }

    @Test
    void aRequestBeforeHelloIsRefused() throws Exception {
        try (RawClient fresh = new RawClient(fx.socket("bad"))) {
            assertError(fresh.request(new Message.Enumerate()), ErrorCode.HELLO_FIRST, "send HELLO first");
            assertError(fresh.request(new Message.Hello(7, 9, "future")), ErrorCode.UNSUPPORTED_VERSION, "speaks version 1");
            assertThat(fresh.request(new Message.Hello(1, 9, "now")).isOk()).isTrue();
            assertThat(fresh.request(new Message.Enumerate()).isOk()).isTrue();
        }
    }

    @Test
    void aMissingFdIsBadFds() throws Exception {
        ByteBuffer body = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putLong(0).putLong(4096).putLong(0);
        Reply r = bad.raw(Wire.HEADER + 28, MessageType.DEVSHM.code(), 0, body.array());
        assertError(r, ErrorCode.BAD_FDS, "DEVSHM carries 1 fds, got 0");
        sessionCarriesOn();
    }

    @Test
    void unexpectedFdsAreRefusedAndClosed() throws Exception {
        try (EventFd a = EventFd.create(); EventFd b = EventFd.create()) {
            long before = OpenFds.count("eventfd");
            // ENUMERATE carries no fds; these two must be closed by the bus, not kept.
            Reply r = bad.raw(Wire.HEADER, MessageType.ENUMERATE.code(), 2, new byte[0], a.fd(), b.fd());
            assertError(r, ErrorCode.BAD_FDS, "ENUMERATE carries 0 fds, got 2");
            assertThat(OpenFds.count("eventfd")).as("eventfds open in this process after the refusal").isEqualTo(before);
        }
        sessionCarriesOn();
    }

    @Test
    void aSocketWhereAMemfdBelongsIsBadFds() throws Exception {
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            long before = OpenFds.count("socket:");
            Reply r = bad.request(new Message.DevShm(DEV1, 0, 4096, 0), pair.first().fd());
            assertError(r, ErrorCode.BAD_FDS, "DEVSHM fd is a SOCKET, not a memfd or regular file");
            assertThat(OpenFds.count("socket:")).isEqualTo(before);
        }
        sessionCarriesOn();
    }

    @Test
    void aSocketWhereAnEventFdBelongsIsBadFds() throws Exception {
        try (UnixConnection.Pair pair = UnixConnection.pair(); EventFd call = EventFd.create()) {
            Reply r = bad.request(new Message.Signal(DEV1, 0), pair.first().fd(), call.fd());
            assertError(r, ErrorCode.BAD_FDS, "SIGNAL fd 0 (kick) is a SOCKET, not an eventfd");
        }
        sessionCarriesOn();
    }

    @Test
    void aRegularTempFileCanBeShared() throws Exception {
        Path file = Files.createTempFile("jvbus-region-", ".bin");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(8192);
            int fd = fdOf(raf);
            Reply r = bad.request(new Message.DevShm(DEV1, 0x10000, 4096, 4096), fd);
            assertThat(r.isOk()).as(r.toString()).isTrue();
            assertThat(c.device(DEV1).holder()).isPresent();
        } finally {
            Files.deleteIfExists(file);
        }
        sessionCarriesOn();
    }

    @Test
    void regionsOfImpossibleSizesAreRefused() throws Exception {
        try (Memfd m = Memfd.create("regions", 16 * 4096)) {
            long before = OpenFds.count("memfd:");
            assertError(bad.request(new Message.DevShm(DEV1, 0, 0, 0), m.fd()), ErrorCode.BAD_REGION, "size must be positive, got 0");
            assertError(bad.request(new Message.DevShm(DEV1, 0, 17 * 4096, 0), m.fd()), ErrorCode.BAD_REGION,
                    "runs past the end of the 65536-byte file");
            assertError(bad.request(new Message.DevShm(DEV1, 0, 4096, 15 * 4096 + 1), m.fd()), ErrorCode.BAD_REGION,
                    "must be a non-negative multiple of 4096");
            assertError(bad.request(new Message.DevShm(DEV1, -4096, 8192, 0), m.fd()), ErrorCode.BAD_REGION, "wraps the address space");
            assertThat(OpenFds.count("memfd:")).as("refused memfds are closed by the bus").isEqualTo(before);

            assertThat(bad.request(new Message.DevShm(DEV1, 0x100000, 8 * 4096, 0), m.fd()).isOk()).isTrue();
            assertError(bad.request(new Message.DevShm(DEV1, 0x104000, 8 * 4096, 8 * 4096), m.fd()), ErrorCode.BAD_REGION,
                    "overlaps the region at 0x100000+32768");
            assertThat(bad.request(new Message.DevShm(DEV1, 0x108000, 8 * 4096, 8 * 4096), m.fd()).isOk())
                    .as("an adjacent region is fine").isTrue();
        }
        sessionCarriesOn();
    }

    @Test
    void callsOnADeviceNotOpenHereAreNotOpen() throws Exception {
        assertError(bad.request(new Message.DevCall(DEV2, BusCall.GET_STATUS, new byte[0])), ErrorCode.NOT_OPEN, "device 2 is not open");
        assertError(bad.request(new Message.DevOpen(DEV2)), ErrorCode.BUSY, "already open by shm client 'raw'");
        assertError(bad.request(new Message.DevCall(DEV1, 0x42, new byte[0])), ErrorCode.BAD_MESSAGE, "unknown bus call 0x42");
        assertError(bad.request(new Message.DevCall(DEV1, BusCall.MODEL_BASE + EchoModel.CALL_FAIL, new byte[0])),
                ErrorCode.DEVICE_ERROR, "asked to fail");
        sessionCarriesOn();
    }

    /** The fd behind a RandomAccessFile, through /proc (the JDK does not hand it out). */
    private static int fdOf(RandomAccessFile raf) throws Exception {
        Path target = Path.of("/proc/self/fd");
        try (var fds = Files.list(target)) {
            String wanted = null;
            for (Path p : (Iterable<Path>) fds::iterator) {
                try {
                    if (Files.readSymbolicLink(p).toString().contains("jvbus-region-")) wanted = p.getFileName().toString();
                } catch (java.io.IOException gone) {
                    // listing race
                }
            }
            if (wanted == null) throw new AssertionError("temp file not open");
            return Integer.parseInt(wanted);
        }
    }
}
