package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.TapDevice;
import dev.jvbus.core.sys.TunOffload;
import dev.jvbus.core.testing.OffloadFrames;
import dev.jvbus.core.testing.TestNetns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The switch's segmentation and checksum completion, byte for byte against the kernel's own. In a network
 * namespace, a Linux bridge joins two TAPs we hold: we write a super-frame (its vnet header asking for TSO,
 * USO or a checksum) into one, the bridge forwards it out of the other, and the kernel gives it to us in the
 * form that TAP's offloads ({@code TUNSETOFFLOAD}) allow: as it is, or segmented and checksummed by its
 * software GSO. The same frame sent through our switch to a port that takes the same offloads must come out
 * the same: the same pieces, the same bytes (a partial checksum completed on both sides before comparing),
 * the same GSO type and size where the frame is passed on whole. Every receiver subset that matters, for
 * TCP over IPv4 (with options, FIN/PSH, ECN's CWR, a sequence number that wraps) and IPv6, USO over both,
 * and a plain partial checksum. Skipped where namespaces or TAPs cannot be made.
 */
class KernelSegmentationTest {
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();
    static TapDevice in, out;
    static final Arena arena = Arena.ofShared();
    static final MemorySegment buf = arena.allocate(12 + 70_000, 8);

    @BeforeAll
    static void bridge() {
        TestNetns n = ns.get();
        if (n == null) return;
        try {
            n.assumeAvailable();
        } catch (RuntimeException e) {
            return;   // each test skips through the extension
        }
        in = TapDevice.create("kin0", n.namespace(), true);
        out = TapDevice.create("kout0", n.namespace(), true);
        n.ip("link", "add", "kbr0", "type", "bridge");
        n.ip("link", "set", "kin0", "master", "kbr0");
        n.ip("link", "set", "kout0", "master", "kbr0");
        n.ip("link", "set", "kbr0", "up");
    }

    @AfterAll
    static void close() {
        if (in != null) in.close();
        if (out != null) out.close();
    }

    static final Set<TunOffload> NONE = EnumSet.noneOf(TunOffload.class), CSUM = EnumSet.of(TunOffload.CSUM),
            TSO4 = EnumSet.of(TunOffload.CSUM, TunOffload.TSO4), TSO6 = EnumSet.of(TunOffload.CSUM, TunOffload.TSO6),
            TSO46 = EnumSet.of(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO6),
            TSO_ECN = EnumSet.of(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO6, TunOffload.TSO_ECN),
            USO = EnumSet.of(TunOffload.CSUM, TunOffload.USO4, TunOffload.USO6);

    static Stream<Arguments> cases() {
        List<OffloadFrames> frames = List.of(
                OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 1),          // PSH|ACK, seq wraps
                OffloadFrames.tcp(true, 7_001, 1000, 0x19, 3, false, 2),           // FIN|PSH|ACK, timestamps, odd last piece
                OffloadFrames.tcp(true, 5_000, 1448, 0x98, 0, true, 3),            // CWR|PSH|ACK with GSO_ECN
                OffloadFrames.tcp(false, 9_000, 1428, 0x18, 3, false, 4),
                OffloadFrames.udp(true, 4_000, 1200, 5),
                OffloadFrames.udp(false, 3_333, 1000, 6),
                OffloadFrames.udpPartial(true, 777, 7),
                OffloadFrames.udpPartial(false, 1001, 8));
        List<Arguments> out = new ArrayList<>();
        for (Set<TunOffload> takes : List.of(NONE, CSUM, TSO4, TSO6, TSO46, TSO_ECN, USO))
            for (OffloadFrames f : frames) out.add(Arguments.of(names(takes), f, takes));
        return out.stream();
    }

    static String names(Set<TunOffload> s) {
        return s.isEmpty() ? "no offloads" : s.toString();
    }

    /** A piece as a receiver gets it: the vnet header's GSO fields, and the bytes with any partial checksum completed. */
    record Piece(int gsoType, int gsoSize, boolean partial, byte[] bytes) {
        @Override public boolean equals(Object o) {
            return o instanceof Piece p && p.gsoType == gsoType && p.gsoSize == gsoSize && Arrays.equals(p.bytes, bytes);
        }

        @Override public int hashCode() { return Arrays.hashCode(bytes); }

        @Override public String toString() {
            return "Piece[gso " + gsoType + "/" + gsoSize + (partial ? ", partial" : "") + ", " + bytes.length + " bytes]";
        }

        static Piece of(int flags, int gsoType, int gsoSize, int csumStart, int csumOffset, byte[] frame) {
            boolean partial = (flags & FrameOffload.F_NEEDS_CSUM) != 0;
            // A super-frame passed on whole keeps its seed on both sides: only a finished frame is completed.
            byte[] b = partial && gsoType == 0 ? OffloadFrames.completed(frame, csumStart, csumOffset) : frame;
            return new Piece(gsoType, gsoType == 0 ? 0 : gsoSize, partial, b);
        }
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("cases")
    void theSwitchGivesAReceiverWhatTheKernelGivesATapWithTheSameOffloads(String label, OffloadFrames f, Set<TunOffload> takes)
            throws Exception {
        List<Piece> kernel = throughTheKernel(f, takes);
        List<Piece> ours = throughTheSwitch(f, TapPort.takesOf(takes));
        assertThat(ours).as("pieces from our switch vs the kernel's").containsExactlyElementsOf(kernel);
        boolean whole = kernel.size() == 1 && kernel.getFirst().gsoType() != 0;
        if (!whole) assertThat(ours).allSatisfy(p -> assertThat(OffloadFrames.checksumsVerify(p.bytes())).as("checksums of " + p).isTrue());
    }

    static List<Piece> throughTheKernel(OffloadFrames f, Set<TunOffload> takes) throws InterruptedException {
        out.setOffload(takes);
        drain();
        byte[] h = f.vnetHeader();
        MemorySegment w = arena.allocate(12 + f.frame().length);
        MemorySegment.copy(h, 0, w, ValueLayout.JAVA_BYTE, 0, 12);
        MemorySegment.copy(f.frame(), 0, w, ValueLayout.JAVA_BYTE, 12, f.frame().length);
        int n = in.write(w, 0, (int) w.byteSize());
        assertThat(n).as("write into the TAP (errno %d)", -n).isEqualTo(w.byteSize());
        int payload = payloadOf(f);
        List<Piece> got = new ArrayList<>();
        int carried = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (carried < payload) {
            int r = out.read(buf, 0, (int) buf.byteSize());
            if (r == -Errno.EAGAIN) {
                if (System.nanoTime() > deadline) throw new AssertionError("the kernel gave " + got + " of " + f + " within 10 s");
                LockSupport.parkNanos(200_000);
                continue;
            }
            assertThat(r).as("read from the TAP").isGreaterThanOrEqualTo(12);
            byte[] fr = buf.asSlice(12, r - 12).toArray(ValueLayout.JAVA_BYTE);
            if (MacAddress.read(MemorySegment.ofArray(fr), 0) != OffloadFrames.DST_MAC) continue;   // the kernel's own chatter
            ByteBuffer hb = buf.asSlice(0, 12).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            got.add(Piece.of(hb.get(0) & 0xff, hb.get(1) & 0xff, hb.getShort(4) & 0xffff, hb.getShort(6) & 0xffff,
                    hb.getShort(8) & 0xffff, fr));
            carried += fr.length - f.hdrLen();
            if (f.gsoType() == 0) break;
        }
        return got;
    }

    static int payloadOf(OffloadFrames f) {
        return f.frame().length - f.hdrLen();
    }

    static void drain() {
        while (out.read(buf, 0, (int) buf.byteSize()) > 0) { /* old chatter */ }
    }

    /** Sends the frame from one port of a fresh switch to a port that takes {@code takes}; returns what it got. */
    static List<Piece> throughTheSwitch(OffloadFrames f, int takes) {
        L2Switch sw = new L2Switch("seg");
        List<Piece> got = new ArrayList<>();
        NetPort rec = new NetPort() {
            @Override public String name() { return "rec"; }

            @Override public int offloadsTaken() { return takes; }

            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                throw new AssertionError("the switch chose the bare overload for a port that takes offloads");
            }

            @Override public DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload o) {
                if ((takes & FrameOffload.TAKES_CSUM) == 0) assertThat(o.flags()).as("flags to a port without checksum offload").isZero();
                assertThat(o.needs() & ~takes).as("asks only what the port takes").isZero();
                got.add(Piece.of(o.flags(), o.gsoType(), o.gsoSize(), o.csumStart(), o.csumOffset(),
                        frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE)));
                return null;
            }
        };
        SwitchPort from = sw.join(new NetPort() {
            @Override public String name() { return "from"; }

            @Override public DropReason deliver(MemorySegment frame, long offset, int length) { return null; }
        });
        SwitchPort to = sw.join(rec);
        MemorySegment m = arena.allocate(f.frame().length);
        MemorySegment.copy(f.frame(), 0, m, ValueLayout.JAVA_BYTE, 0, f.frame().length);
        from.send(m, 0, f.frame().length, new FrameMeta().offload(new FrameOffload().set(f.flags(), f.gsoType(), f.hdrLen(), f.gsoSize(), f.csumStart(), f.csumOffset())));
        assertThat(to.stats().dropped()).isZero();
        assertThat(from.stats().dropped()).isZero();
        if (!got.isEmpty() && f.gsoType() != 0 && got.getFirst().gsoType() == 0) assertThat(to.framesSegmented()).isEqualTo(1);
        return got;
    }
}
