package dev.jvbus.connector.vhostuser;

import static dev.jvbus.connector.vhostuser.StreamGuest.QSIZE;
import static dev.jvbus.connector.vhostuser.StreamGuest.TX_DESC;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.UnixConnection;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A vhost-user front-end that outlives its back-end, as QEMU with {@code reconnect} does: it holds
 * the guest's memory (a memfd, with both rings and their buffers, a {@link StreamGuest}) and the
 * inflight buffer the first back-end gave it (GET_INFLIGHT_FD), and after the back-end died it
 * connects again, at the same socket, and sets the device up again with the same memory, rings and
 * doorbells, handing the inflight buffer back (SET_INFLIGHT_FD). The rings' base it sends is 0, as
 * DPDK's virtio-user does on every set-up: after a crash no front-end knows where the back-end was, and
 * the inflight buffer is what says it.
 */
final class ReconnectingFrontEnd implements AutoCloseable {
    static final long FEATURES = VirtioFeatures.VERSION_1.mask();
    static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.REPLY_ACK, ProtocolFeature.MQ, ProtocolFeature.INFLIGHT_SHMFD);

    final StreamGuest guest;
    private final Path socket;
    private FrontEnd fe;
    private OwnedFd inflightFd;
    private long inflightSize;
    private Arena arena;
    private MemorySegment inflight;
    int connections;

    ReconnectingFrontEnd(StreamGuest guest, Path socket) {
        this.guest = guest;
        this.socket = socket;
    }

    /** Connects (retrying while the back-end is down, up to {@code patience}) and sets the device up: both rings run once it returns. */
    void connectAndSetUp(Duration patience) throws Exception {
        long deadline = System.nanoTime() + patience.toNanos();
        for (;;) {
            try {
                fe = new FrontEnd(UnixConnection.connect(socket));
                break;
            } catch (RuntimeException down) {   // no socket yet, or the dead back-end's (ECONNREFUSED)
                if (System.nanoTime() > deadline) throw new AssertionError("no back-end at " + socket + " within " + patience, down);
                Thread.sleep(20);
            }
        }
        connections++;
        fe.send(Request.GET_FEATURES);
        long offered = fe.replyU64(Request.GET_FEATURES);
        if ((offered & (1L << Wire.F_PROTOCOL_FEATURES)) == 0) throw new AssertionError("back-end offers no protocol features");
        fe.send(Request.GET_PROTOCOL_FEATURES);
        long protocol = fe.replyU64(Request.GET_PROTOCOL_FEATURES);
        if (!ProtocolFeature.INFLIGHT_SHMFD.in(protocol)) throw new AssertionError("back-end does not offer INFLIGHT_SHMFD");
        fe.sendU64(Request.SET_PROTOCOL_FEATURES, PROTOCOL);
        fe.send(Request.SET_OWNER);
        fe.sendU64(Request.SET_FEATURES, FEATURES | (1L << Wire.F_PROTOCOL_FEATURES));
        if (inflightFd == null) {   // QEMU asks once, and keeps the buffer for every back-end after
            fe.send(Request.GET_INFLIGHT_FD, 0, inflightPayload(0));
            FrontEnd.ReplyWithFd r = fe.replyWithFd(Request.GET_INFLIGHT_FD);
            inflightSize = r.payload().getLong();
            if (r.fd() == null || inflightSize <= 0) throw new AssertionError("GET_INFLIGHT_FD gave no buffer");
            inflightFd = r.fd();
            arena = Arena.ofShared();
            inflight = Memfd.map(inflightFd, 0, inflightSize, MappingRule.SEALED_MEMFD, arena);
        }
        fe.send(Request.SET_INFLIGHT_FD, 0, inflightPayload(inflightSize), inflightFd.number());
        guest.shareWith(fe);   // the same memory, rings and doorbells to every back-end, at base 0
        fe.send(Request.GET_FEATURES);   // a request with a reply: everything before it was handled
        fe.replyU64(Request.GET_FEATURES);
    }

    private static ByteBuffer inflightPayload(long size) {
        return Codec.payload(24).putLong(size).putLong(0).putShort((short) 2).putShort((short) QSIZE).putInt(0).flip();
    }

    /** The back-end is gone: drop the connection (the guest's memory, rings and inflight buffer stay). */
    void lost() {
        if (fe != null) fe.close();
        fe = null;
    }

    /** Heads the inflight buffer has in flight on ring {@code queue} now (read while the back-end is stopped). */
    int[] inFlight(int queue) {
        long base = queue * SplitInflightLog.bytesFor(QSIZE);
        int n = 0;
        int[] heads = new int[QSIZE];
        for (int h = 0; h < QSIZE; h++) if (inflight.get(ValueLayout.JAVA_BYTE, base + 16 + 16L * h) == 1) heads[n++] = h;
        return java.util.Arrays.copyOf(heads, n);
    }

    /** The frame number in tx descriptor {@code head}'s buffer. */
    int txSeq(int head) {
        long addr = guest.mem.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, TX_DESC + 16L * head);
        return guest.mem.segment().get(ValueLayout.JAVA_INT_UNALIGNED, addr + StreamGuest.HDR + 14);
    }

    @Override
    public void close() {
        lost();
        if (arena != null) arena.close();
        if (inflightFd != null) inflightFd.close();
    }
}
