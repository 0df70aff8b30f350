package dev.jvbus.connector.shm.protocol;

import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * Fuzz target: the shm protocol's frame reader ({@link FrameChannel#read}) and body decoder
 * ({@link Codec}) as a session uses them, over a real socketpair. The input is what a hostile client
 * sends (FUZZING.md): chunks of bytes (well-formed frames of any type, headers with any length, or raw
 * bytes), each sendmsg carrying 0 to 5 real fds (an eventfd and a memfd). The reader reads frames
 * until the stream ends or breaks, decodes each, and the client-side parsers read each REPLY payload.
 * What must hold:
 * <ul>
 *   <li>reading never throws; decoding refuses with {@link ProtocolException} only;
 *   <li>a decoded message encodes back to a frame that decodes to the same message;
 *   <li>every fd that arrived is closed once the frames are, and no other fd was closed (fd table and a
 *       sentinel, {@link FdLedger}).
 * </ul>
 */
final class FrameReaderTarget {
    private static FdLedger ledger;
    private static EventFd eventFd;
    private static Memfd memfd;

    static synchronized void run(byte[] bytes) throws Exception {
        if (ledger == null) {
            ledger = new FdLedger();
            eventFd = EventFd.create();
            memfd = Memfd.create("fuzz-shm-frame", 4096);
        }
        Map<Integer, String> before = ledger.snapshot();
        FuzzInput in = new FuzzInput(bytes);
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            send(in, pair.first());
            readAll(new FrameChannel(pair.second()));
        }
        ledger.assertNoNewFds("shm frames", before);
        ledger.assertSentinelIntact("shm frames");
    }

    /** The client's part: chunks until the input ends or the socket buffer is full (nothing waits). */
    private static void send(FuzzInput in, UnixConnection out) {
        out.setNonBlocking(true);
        while (in.more()) {
            byte[] chunk = chunk(in);
            int[] fds = new int[in.below(4) == 0 ? in.below(6) : 0];
            for (int k = 0; k < fds.length; k++) fds[k] = in.bit() ? eventFd.fd() : memfd.fd();
            if (chunk.length == 0) continue;
            int sent = out.send(chunk, 0, chunk.length, fds);
            while (sent > 0 && sent < chunk.length) {
                int more = out.send(chunk, sent, chunk.length - sent);
                if (more == 0) break;
                sent += more;
            }
            if (sent < chunk.length) break;   // full: what was sent is the stream
        }
        out.shutdownOutput();
    }

    private static byte[] chunk(FuzzInput in) {
        return switch (in.below(4)) {
            case 0, 1 -> frame(in, Wire.HEADER + in.below(80));
            case 2 -> frame(in, in.bit() ? in.u32() : Wire.MAX_FRAME - in.below(16) + in.below(32));
            default -> in.bytes(1 + in.below(64));
        };
    }

    /** A header (type mostly one of ours, any fd count, reserved byte mostly 0) and a body of its length if small. */
    private static byte[] frame(FuzzInput in, int length) {
        MessageType[] types = MessageType.values();
        int type = in.below(8) == 0 ? in.u16() : types[in.below(types.length)].code();
        int fdCount = in.below(8) == 0 ? in.u8() : in.below(3);
        int reserved = in.below(16) == 0 ? in.u8() : 0;
        int body = Math.max(0, Math.min(length - Wire.HEADER, 256));
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + body).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(length).putShort((short) type).put((byte) fdCount).put((byte) reserved).putInt(in.u32());
        b.put(in.bytes(body));
        return b.array();
    }

    /** The session's part: frames until the end or a broken header, each decoded and closed. */
    private static void readAll(FrameChannel channel) throws ProtocolException {
        while (true) {
            switch (channel.read()) {
                case FrameChannel.EndOfStream end -> { return; }
                case FrameChannel.BrokenFrame broken -> {
                    if (broken.error().recoverable()) throw new AssertionError("a broken frame said it was recoverable: " + broken);
                    return;
                }
                case FrameChannel.Frame frame -> {
                    try (frame) {
                        decode(frame);
                    }
                }
            }
        }
    }

    private static void decode(FrameChannel.Frame frame) throws ProtocolException {
        if (frame.fds().overLimit() && frame.fds().count() != 0) throw new AssertionError("over its fd limit but holds fds: " + frame);
        Message m;
        try {
            m = Codec.decode(frame.header(), frame.body(), frame.fds().count());
        } catch (ProtocolException refused) {
            if (!refused.recoverable()) throw new AssertionError("a body was refused as unrecoverable: " + refused.getMessage());
            return;
        }
        if (frame.fds().count() != m.type().fds()) throw new AssertionError(m.type() + " decoded with " + frame.fds().count() + " fds");
        ByteBuffer again = Codec.encode(m, frame.header().seq());
        FrameHeader h = FrameHeader.read(again);
        Message m2 = Codec.decode(h, again.slice(Wire.HEADER, h.bodyLength()), m.type().fds());
        if (!m2.equals(m)) throw new AssertionError("encode/decode changed " + m + " into " + m2);
        if (m instanceof Message.Reply r) {   // the client library reads these payloads from the bus
            try {
                Codec.decodeDeviceList(r.payload());
            } catch (ProtocolException refused) {
                // a payload that is not a device list
            }
            try {
                Codec.decodeHelloAccepted(r.payload());
            } catch (ProtocolException refused) {
                // a payload that is not a HELLO reply
            }
        }
    }
}
