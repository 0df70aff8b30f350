package dev.jvbus.connector.shm.protocol;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.bus.DevId;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

class CodecTest {

    private static Message roundTrip(Message m) throws ProtocolException {
        ByteBuffer frame = Codec.encode(m, 42);
        FrameHeader h = FrameHeader.read(frame);
        assertThat(h.length()).isEqualTo(frame.remaining());
        assertThat(h.seq()).isEqualTo(42);
        assertThat(h.fdCount()).isEqualTo(m.type().fds());
        return Codec.decode(h, frame.slice(Wire.HEADER, h.bodyLength()), h.fdCount());
    }

    @Test
    void everyMessageRoundTrips() throws Exception {
        DevId d = new DevId(-2);
        for (Message m : List.of(
                new Message.Hello(1, 3, "client-ä"),
                new Message.Enumerate(),
                new Message.DevOpen(d),
                new Message.DevClose(d),
                new Message.DevCall(d, 0x101, new byte[] {1, 2, 3}),
                new Message.DevShm(d, 0x1_0000_0000L, 1 << 20, 4096),
                new Message.Signal(d, 65535),
                Message.Reply.ok(new byte[] {9}),
                Message.Reply.error(ErrorCode.NO_SUCH_DEVICE, "no such device 7"),
                new Message.DevAdd(d, "venet"),
                new Message.DevDrop(d),
                new Message.NeedsReset(d, "queue 0: chain loops"),
                new Message.Moved(d, "http://node-b:8080", "tenant-a", new DevId(7), "/run/jvbus/tenant-a.sock"))) {
            assertThat(roundTrip(m)).as(m.toString()).isEqualTo(m);
        }
    }

    @Test
    void theHeaderLayoutIsLittleEndianAsDocumented() {
        ByteBuffer f = Codec.encode(new Message.DevOpen(new DevId(0x01020304)), 0x0A0B0C0D);
        byte[] bytes = new byte[f.remaining()];
        f.get(bytes);
        assertThat(bytes).containsExactly(
                16, 0, 0, 0,        // length
                0x03, 0,            // type DEVOPEN
                0, 0,               // fds, reserved
                0x0D, 0x0C, 0x0B, 0x0A, // seq
                4, 3, 2, 1);        // devid
    }

    @Test
    void aTruncatedBodyIsARecoverableBadMessage() {
        ByteBuffer body = ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1).flip();
        FrameHeader h = new FrameHeader(Wire.HEADER + 2, MessageType.DEVOPEN.code(), 0, 1);
        assertThatThrownBy(() -> Codec.decode(h, body, 0))
                .isInstanceOf(ProtocolException.class)
                .hasMessage("DEVOPEN truncated: devid needs 4 bytes, 2 left")
                .satisfies(e -> {
                    assertThat(((ProtocolException) e).code()).isEqualTo(ErrorCode.BAD_MESSAGE);
                    assertThat(((ProtocolException) e).recoverable()).isTrue();
                });
    }

    @Test
    void trailingBytesAreRefused() {
        ByteBuffer body = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putShort((short) 0).flip();
        FrameHeader h = new FrameHeader(Wire.HEADER + 6, MessageType.DEVCLOSE.code(), 0, 1);
        assertThatThrownBy(() -> Codec.decode(h, body, 0)).hasMessage("DEVCLOSE has 2 unexpected trailing bytes");
    }

    @Test
    void unknownTypesAndWrongFdCountsAreNamed() {
        FrameHeader unknown = new FrameHeader(Wire.HEADER, 0x55, 0, 1);
        assertThatThrownBy(() -> Codec.decode(unknown, ByteBuffer.allocate(0), 0))
                .hasMessage("unknown message type 0x55")
                .satisfies(e -> assertThat(((ProtocolException) e).code()).isEqualTo(ErrorCode.UNKNOWN_TYPE));

        ByteBuffer shm = ByteBuffer.allocate(28);
        FrameHeader noFd = new FrameHeader(Wire.HEADER + 28, MessageType.DEVSHM.code(), 0, 1);
        assertThatThrownBy(() -> Codec.decode(noFd, shm, 0)).hasMessage("DEVSHM carries 1 fds, got 0");
        FrameHeader lying = new FrameHeader(Wire.HEADER + 28, MessageType.DEVSHM.code(), 1, 1);
        assertThatThrownBy(() -> Codec.decode(lying, shm, 2)).hasMessage("DEVSHM header claims 1 fds but 2 arrived")
                .satisfies(e -> assertThat(((ProtocolException) e).code()).isEqualTo(ErrorCode.BAD_FDS));
    }

    @Test
    void impossibleLengthsBreakTheFrameAndAreNotRecoverable() {
        for (int len : new int[] {0, 11, Wire.MAX_FRAME + 1, -1}) {
            ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(len).putShort((short) 1).put((byte) 0).put((byte) 0).putInt(1).flip();
            assertThatThrownBy(() -> FrameHeader.read(h)).as("length " + len)
                    .isInstanceOf(ProtocolException.class)
                    .satisfies(e -> {
                        assertThat(((ProtocolException) e).code()).isEqualTo(ErrorCode.BAD_FRAME);
                        assertThat(((ProtocolException) e).recoverable()).isFalse();
                    });
        }
    }

    @Test
    void stringsAreBoundedAndMustBeUtf8() {
        ByteBuffer body = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1).putShort((short) 1)
                .putShort((short) 2).put((byte) 0xC3).put((byte) 0x28).flip();
        FrameHeader h = new FrameHeader(Wire.HEADER + 8, MessageType.HELLO.code(), 0, 1);
        assertThatThrownBy(() -> Codec.decode(h, body.limit(8), 0)).hasMessage("HELLO: string is not UTF-8");

        ByteBuffer huge = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 1).putShort((short) 1).putShort((short) 5000).flip();
        assertThatThrownBy(() -> Codec.decode(new FrameHeader(Wire.HEADER + 6, MessageType.HELLO.code(), 0, 1), huge, 0))
                .hasMessage("HELLO: string of 5000 bytes exceeds 1024");
    }

    @Test
    void replyPayloadsRoundTripAndAreChecked() throws Exception {
        var hello = new Message.HelloAccepted(1, "tenant-a");
        assertThat(Codec.decodeHelloAccepted(Codec.encodeHelloAccepted(hello))).isEqualTo(hello);

        var list = List.of(new Message.DeviceEntry(new DevId(1), "venet"), new Message.DeviceEntry(new DevId(-1), "test-echo"));
        assertThat(Codec.decodeDeviceList(Codec.encodeDeviceList(list))).isEqualTo(new Message.DeviceList(list, true));

        byte[] lying = ByteBuffer.allocate(5).order(ByteOrder.LITTLE_ENDIAN).putInt(1000).put((byte) 1).array();
        assertThatThrownBy(() -> Codec.decodeDeviceList(lying)).hasMessageContaining("claims 1000 devices in 5 bytes");
    }

    @Test
    void aListTooLongForOneFrameIsCutAndSaysSo() throws Exception {
        var many = new java.util.ArrayList<Message.DeviceEntry>();
        for (int i = 1; i <= 20_000; i++) many.add(new Message.DeviceEntry(new DevId(i), "test-echo"));
        byte[] payload = Codec.encodeDeviceList(many);
        assertThat(payload.length).isLessThanOrEqualTo(Wire.MAX_FRAME - Wire.HEADER - 4);
        Message.DeviceList got = Codec.decodeDeviceList(payload);
        assertThat(got.complete()).isFalse();
        assertThat(got.devices()).isNotEmpty().isEqualTo(many.subList(0, got.devices().size()));
    }
}
