package dev.jvbus.connector.vhostuser.protocol;

import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFds;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.testing.FdLedger;
import dev.jvbus.core.testing.fuzz.FuzzInput;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * Fuzz target: the vhost-user codec ({@link Codec#header}, {@link Codec#decode}) fed the way
 * {@code VhostUserSession.serve} feeds it: header and payload read from a real socketpair with
 * {@code recvFully} into one {@link OwnedFds} per message, whose limit the request lowers after the
 * header. The input is what a hostile front-end sends (FUZZING.md): messages of our requests (or any
 * id) with any flags, sizes and payload bytes, or raw bytes, each sendmsg carrying 0 to 9 real fds
 * (memfds and eventfds). What must hold:
 * <ul>
 *   <li>a header is refused only as fatal, a payload only as not fatal, both as {@link VhostUserException};
 *   <li>a decoded message agrees with what was sent: a memory table's regions match its fds, a config
 *       access its size;
 *   <li>every fd that arrived is closed with its message, and no other fd was closed.
 * </ul>
 */
final class VhostUserCodecTarget {
    private static FdLedger ledger;
    private static EventFd eventFd;
    private static Memfd memfd;

    static synchronized void run(byte[] bytes) throws Exception {
        if (ledger == null) {
            ledger = new FdLedger();
            eventFd = EventFd.create();
            memfd = Memfd.create("fuzz-vhost-user", 4096);
        }
        Map<Integer, String> before = ledger.snapshot();
        FuzzInput in = new FuzzInput(bytes);
        try (UnixConnection.Pair pair = UnixConnection.pair()) {
            send(in, pair.first());
            serve(pair.second());
        }
        ledger.assertNoNewFds("vhost-user messages", before);
        ledger.assertSentinelIntact("vhost-user messages");
    }

    private static void send(FuzzInput in, UnixConnection out) {
        out.setNonBlocking(true);
        while (in.more()) {
            byte[] chunk = in.below(4) == 0 ? in.bytes(1 + in.below(64)) : message(in);
            int[] fds = new int[in.below(3) == 0 ? in.below(10) : 0];
            for (int k = 0; k < fds.length; k++) fds[k] = in.bit() ? eventFd.fd() : memfd.fd();
            int sent = out.send(chunk, 0, chunk.length, fds);
            while (sent > 0 && sent < chunk.length) {
                int more = out.send(chunk, sent, chunk.length - sent);
                if (more == 0) break;
                sent += more;
            }
            if (sent < chunk.length) break;
        }
        out.shutdownOutput();
    }

    /** A message of one of our requests (mostly) with mostly version-1 flags and a size near its shape's. */
    private static byte[] message(FuzzInput in) {
        Request[] requests = Request.values();
        Request r = requests[in.below(requests.length)];
        int id = in.below(8) == 0 ? in.u32() : r.id();
        int flags = in.below(8) == 0 ? in.u32() : Wire.VERSION | (in.bit() ? Wire.FLAG_NEED_REPLY : 0);
        int size = switch (in.below(6)) {
            case 0 -> in.u32();
            case 1 -> in.below(Wire.MAX_PAYLOAD + 2);
            case 2 -> 8 + 32 * in.below(Wire.MAX_REGIONS + 2);
            case 3 -> 12 + in.below(Wire.MAX_CONFIG + 2);
            default -> r.payload().min;
        };
        int body = Math.max(0, Math.min(size, 512));
        ByteBuffer b = ByteBuffer.allocate(Wire.HEADER + body).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(id).putInt(flags).putInt(size);
        if (r.payload() == Request.Payload.MEM_TABLE && body >= 8) {   // a region count that is often plausible
            b.putInt(in.below(4) == 0 ? in.u32() : in.below(Wire.MAX_REGIONS + 1)).putInt(0);
            body -= 8;
        } else if (r.payload() == Request.Payload.CONFIG && body >= 12) {
            b.putInt(in.u32()).putInt(in.bit() ? size - 12 : in.u32()).putInt(in.u32());
            body -= 12;
        }
        b.put(in.bytes(body));
        return b.array();
    }

    /** The session's read loop, reduced to the codec: each message decoded, then its fds closed. */
    private static void serve(UnixConnection conn) {
        byte[] buf = new byte[Wire.HEADER + Wire.MAX_PAYLOAD];
        while (true) {
            try (OwnedFds fds = OwnedFds.upTo(Wire.MAX_REGIONS)) {
                if (conn.recvFully(buf, 0, Wire.HEADER, fds) < Wire.HEADER) return;
                Codec.Header h;
                try {
                    h = Codec.header(ByteBuffer.wrap(buf, 0, Wire.HEADER));
                } catch (VhostUserException e) {
                    if (!e.fatal()) throw new AssertionError("a bad header was refused as not fatal: " + e.getMessage());
                    return;
                }
                fds.lowerLimit(h.request() == null ? 0 : h.request().maxFds());
                if (conn.recvFully(buf, Wire.HEADER, h.size(), fds) < h.size()) return;
                if (fds.overLimit()) {
                    if (fds.count() != 0) throw new AssertionError("over its fd limit but holds " + fds.count());
                    continue;
                }
                Message m;
                try {
                    m = Codec.decode(h, ByteBuffer.wrap(buf, Wire.HEADER, h.size()).slice(), fds.count());
                } catch (VhostUserException e) {
                    if (e.fatal()) throw new AssertionError("a payload was refused as fatal: " + e.getMessage());
                    continue;
                }
                check(h, m, fds.count());
            }
        }
    }

    private static void check(Codec.Header h, Message m, int fds) {
        if (m.request() != h.request()) throw new AssertionError("decoded " + m.request() + " from id " + h.requestId());
        if (fds < m.request().minFds() || fds > Math.max(m.request().maxFds(), 1))
            throw new AssertionError(m.request() + " accepted with " + fds + " fds");
        switch (m.body()) {
            case Message.MemTable t -> {
                if (t.regions().size() != fds) throw new AssertionError(t.regions().size() + " regions with " + fds + " fds");
                if (h.size() < 8 + 32 * t.regions().size()) throw new AssertionError(t + " from " + h.size() + " bytes");
            }
            case Message.Config c -> {
                if (c.data().length != c.size() || 12 + c.size() != h.size())
                    throw new AssertionError("config of " + c.size() + " bytes, data " + c.data().length + ", payload " + h.size());
            }
            default -> { }
        }
    }
}
