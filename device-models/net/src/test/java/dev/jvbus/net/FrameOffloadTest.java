package dev.jvbus.net;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.testing.OffloadFrames;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The offload header's one check, the switch's ingress drop, bare ports, and the offload path's allocation. */
class FrameOffloadTest {
    final Arena arena = Arena.ofShared();
    final L2Switch sw = new L2Switch("offload");

    @AfterEach
    void free() {
        arena.close();
    }

    MemorySegment offHeap(byte[] b) {
        MemorySegment m = arena.allocate(b.length);
        MemorySegment.copy(b, 0, m, ValueLayout.JAVA_BYTE, 0, b.length);
        return m;
    }

    static FrameOffload header(OffloadFrames f) {
        return new FrameOffload().set(f.flags(), f.gsoType(), f.hdrLen(), f.gsoSize(), f.csumStart(), f.csumOffset());
    }

    int check(byte[] frame, FrameOffload o) {
        return o.check(MemorySegment.ofArray(frame), 0, frame.length);
    }

    /**
     * The vnet header's bytes, field by field (virtio 1.x 5.1.6, little-endian), read and written by words since the
     * tx and rx paths do it per frame: every field at its place, high bits kept, nothing written past what was asked.
     */
    @Test
    void aVnetHeaderIsReadAndWrittenFieldByFieldAtItsPlaces() {
        byte[] h = {(byte) 0xc3, (byte) 0x81, (byte) 0xdc, (byte) 0xfe, 0x34, 0x12, (byte) 0xcd, (byte) 0xab, 0x78, 0x56, 0x11, 0x22};
        FrameOffload o = new FrameOffload().readVnet(MemorySegment.ofArray(h), 0);
        assertThat(List.of(o.flags(), o.gsoType(), o.hdrLen(), o.gsoSize(), o.csumStart(), o.csumOffset()))
                .containsExactly(0xc3, 0x81, 0xfedc, 0x1234, 0xabcd, 0x5678);
        assertThat(new FrameOffload().readVnet(MemorySegment.ofArray(h), 0, FrameOffload.F_NEEDS_CSUM).flags()).as("flags kept").isEqualTo(1);
        byte[] at2 = new byte[14];
        System.arraycopy(h, 0, at2, 2, 12);
        assertThat(new FrameOffload().readVnet(MemorySegment.ofArray(at2), 2).csumStart()).as("at an offset").isEqualTo(0xabcd);

        byte[] ten = new byte[14];
        java.util.Arrays.fill(ten, (byte) 0x5a);
        o.writeVnet(MemorySegment.ofArray(ten), 2);
        assertThat(java.util.Arrays.copyOfRange(ten, 2, 12)).isEqualTo(java.util.Arrays.copyOf(h, 10));
        assertThat(new byte[] {ten[0], ten[1], ten[12], ten[13]}).as("nothing outside the 10 bytes").containsOnly((byte) 0x5a);

        byte[] twelve = new byte[13];
        java.util.Arrays.fill(twelve, (byte) 0x5a);
        o.writeVnetV1(MemorySegment.ofArray(twelve), 0, 0x2211);
        assertThat(java.util.Arrays.copyOf(twelve, 12)).as("num_buffers last, little-endian").isEqualTo(h);
        assertThat(twelve[12]).isEqualTo((byte) 0x5a);
        byte[] none = new byte[12];
        java.util.Arrays.fill(none, (byte) 0x5a);
        FrameOffload.NONE.writeVnetV1(MemorySegment.ofArray(none), 0, 1);
        assertThat(none).isEqualTo(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0});
    }

    @Test
    void aGoodHeaderChecksAndIsNormalisedAndSaysWhatAReceiverNeeds() {
        OffloadFrames f = OffloadFrames.tcp(true, 5000, 1448, 0x18, 3, true, 1);
        FrameOffload o = header(f).set(f.flags() | 0x04 | FrameOffload.F_DATA_VALID, f.gsoType(), 9999, f.gsoSize(), f.csumStart(), f.csumOffset());
        assertThat(check(f.frame(), o)).isEqualTo(FrameOffload.OK);
        assertThat(o.hdrLen()).as("hdr_len: where the TCP header ends").isEqualTo(14 + 20 + 32);
        assertThat(o.flags()).as("only NEEDS_CSUM stays on a super-frame").isEqualTo(FrameOffload.F_NEEDS_CSUM);
        assertThat(o.needs()).isEqualTo(FrameOffload.TAKES_CSUM | FrameOffload.TAKES_TSO4 | FrameOffload.TAKES_TSO_ECN);
        OffloadFrames u = OffloadFrames.udp(false, 3000, 1000, 2);
        FrameOffload uo = header(u);
        assertThat(check(u.frame(), uo)).isEqualTo(FrameOffload.OK);
        assertThat(uo.needs()).isEqualTo(FrameOffload.TAKES_CSUM | FrameOffload.TAKES_USO6);
    }

    @Test
    void eachWayAHeaderCanMisdescribeItsFrameIsRefused() {
        OffloadFrames f = OffloadFrames.tcp(true, 5000, 1448, 0x18, 0, false, 1);
        int s = f.csumStart(), o = f.csumOffset(), n = FrameOffload.F_NEEDS_CSUM;
        byte[] v6 = OffloadFrames.tcp(false, 5000, 1448, 0x18, 0, false, 1).frame();
        assertThat(check(f.frame(), new FrameOffload().set(n, FrameOffload.GSO_UDP, 0, 1448, s, o))).as("UFO").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, 2, 0, 1448, s, o))).as("unknown type").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, FrameOffload.GSO_UDP_L4 | FrameOffload.GSO_ECN, 0, 1448, s, 6)))
                .as("ECN on UDP").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(0, 1, 0, 1448, s, o))).as("no NEEDS_CSUM").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, 1, 0, 0, s, o))).as("gso_size 0").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, 1, 0, 1448, s - 4, o))).as("csum_start not at L4").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, 1, 0, 1448, s, 6))).as("csum_offset not TCP's").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(f.frame(), new FrameOffload().set(n, FrameOffload.GSO_UDP_L4, 0, 1448, s, 6))).as("UDP type on TCP").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(v6, new FrameOffload().set(n, FrameOffload.GSO_TCPV4, 0, 1448, 54, o))).as("TCPV4 on IPv6").isEqualTo(FrameOffload.BAD_GSO);
        byte[] frag = f.frame().clone();
        frag[14 + 6] |= 0x20;                                                        // MF
        assertThat(check(frag, header(f))).as("an IPv4 fragment").isEqualTo(FrameOffload.BAD_GSO);
        byte[] doff = f.frame().clone();
        doff[s + 12] = 0x40;
        assertThat(check(doff, header(f))).as("TCP data offset < 5").isEqualTo(FrameOffload.BAD_GSO);
        byte[] bigDoff = java.util.Arrays.copyOf(f.frame(), s + 30);
        bigDoff[s + 12] = (byte) 0xf0;
        assertThat(check(bigDoff, header(f))).as("TCP header past the frame").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(java.util.Arrays.copyOf(f.frame(), s + 20), header(f))).as("no payload").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(new byte[FrameOffload.MAX_GSO_FRAME + 1], header(f))).as("larger than 64 KiB").isEqualTo(FrameOffload.BAD_GSO);
        assertThat(check(new byte[30], new FrameOffload().set(n, 0, 0, 0, 20, 9))).as("checksum field past the end").isEqualTo(FrameOffload.BAD_CSUM);
        assertThat(check(new byte[30], new FrameOffload().set(n, 0, 0, 0, 20, 8))).isEqualTo(FrameOffload.OK);
    }

    static final class Bare implements NetPort {
        final List<byte[]> got = new ArrayList<>();

        @Override public String name() { return "bare"; }

        @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
            got.add(frame.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE));
            return null;
        }
    }

    @Test
    void aPortThatTakesNoOffloadGetsPlainCompleteFramesAndABadHeaderIsDroppedAtIngress() {
        Bare bare = new Bare();
        SwitchPort from = sw.join(new Bare()), to = sw.join(bare);
        OffloadFrames t = OffloadFrames.tcp(true, 10_000, 1448, 0x19, 0, false, 3);
        from.send(offHeap(t.frame()), 0, t.frame().length, new FrameMeta().offload(header(t)));
        assertThat(bare.got).hasSize(7).allSatisfy(b -> assertThat(OffloadFrames.checksumsVerify(b)).isTrue());
        OffloadFrames p = OffloadFrames.udpPartial(true, 501, 4);
        from.send(offHeap(p.frame()), 0, p.frame().length, new FrameMeta().offload(header(p)));
        assertThat(bare.got.getLast()).isEqualTo(OffloadFrames.completed(p.frame(), p.csumStart(), p.csumOffset()));
        assertThat(to.framesSegmented()).isEqualTo(1);
        assertThat(to.checksumsCompleted()).isEqualTo(1);
        assertThat(to.framesOut()).isEqualTo(8);

        from.send(offHeap(t.frame()), 0, t.frame().length, new FrameMeta().offload(header(t).set(1, 1, 0, 1448, 30, 16)));
        assertThat(from.dropped(DropReason.BAD_OFFLOAD)).isEqualTo(1);
        assertThat(bare.got).hasSize(8);
    }

    @Test
    void aSuperFrameToAPortThatTakesTsoGoesWholeAndIsCountedAsSuch() {
        NetPort tso = new NetPort() {
            final List<Integer> lengths = new ArrayList<>();
            @Override public String name() { return "tso"; }
            @Override public int offloadsTaken() { return FrameOffload.TAKES_ALL; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                lengths.add(length);
                return null;
            }
        };
        SwitchPort from = sw.join(new Bare()), whole = sw.join(tso), bare = sw.join(new Bare());
        OffloadFrames t = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 7);
        OffloadFrames p = OffloadFrames.udpPartial(true, 501, 8);
        from.send(offHeap(t.frame()), 0, t.frame().length, new FrameMeta().offload(header(t)));   // flooded: to both ports
        from.send(offHeap(p.frame()), 0, p.frame().length, new FrameMeta().offload(header(p)));   // a partial checksum is no super-frame

        assertThat(whole.superFramesOut()).as("super-frames delivered whole").isEqualTo(1);
        assertThat(whole.framesOut()).isEqualTo(2);
        assertThat(whole.bytesOut()).isEqualTo(t.frame().length + p.frame().length);
        assertThat(whole.framesSegmented()).isZero();
        assertThat(bare.superFramesOut()).as("a port that takes no TSO gets segments, not super-frames").isZero();
        assertThat(bare.framesSegmented()).isEqualTo(1);
    }

    @Test
    void segmentingAndCompletingChecksumsAllocateNothingPerFrame() {
        NetPort copier = new NetPort() {
            final MemorySegment sink = arena.allocate(FrameOffload.MAX_GSO_FRAME);
            @Override public String name() { return "copier"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                MemorySegment.copy(frame, offset, sink, 0, length);
                return null;
            }
        };
        NetPort tso = new NetPort() {
            final MemorySegment sink = arena.allocate(FrameOffload.MAX_GSO_FRAME);
            @Override public String name() { return "tso"; }
            @Override public int offloadsTaken() { return FrameOffload.TAKES_ALL; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) {
                MemorySegment.copy(frame, offset, sink, 0, length);
                return null;
            }
        };
        SwitchPort in = sw.join(new Bare());
        SwitchPort bare = sw.join(copier), whole = sw.join(tso);
        OffloadFrames t = OffloadFrames.tcp(true, 10_000, 1448, 0x18, 0, false, 5), p = OffloadFrames.udpPartial(false, 1200, 6);
        MemorySegment tf = offHeap(t.frame()), pf = offHeap(p.frame());
        FrameOffload h = new FrameOffload();   // the sender's flyweight, refilled per frame as a device does
        FrameMeta meta = new FrameMeta().offload(h);
        for (int i = 0; i < 22_000; i++) {
            if (i == 2_000) {
                var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
                long before = mx.getCurrentThreadAllocatedBytes();
                for (int j = 0; j < 20_000; j++) {
                    in.send(tf, 0, t.frame().length, meta.offload(h.set(t.flags(), t.gsoType(), t.hdrLen(), t.gsoSize(), t.csumStart(), t.csumOffset())));
                    in.send(pf, 0, p.frame().length, meta.offload(h.set(p.flags(), p.gsoType(), p.hdrLen(), p.gsoSize(), p.csumStart(), p.csumOffset())));
                }
                long bytes = mx.getCurrentThreadAllocatedBytes() - before;
                System.out.printf("offload path: %d bytes allocated for 20000 super-frames and 20000 partial checksums%n", bytes);
                assertThat(bytes).as("bytes allocated segmenting 20000 super-frames").isLessThan(16 * 1024);
                break;
            }
            in.send(tf, 0, t.frame().length, meta.offload(h.set(t.flags(), t.gsoType(), t.hdrLen(), t.gsoSize(), t.csumStart(), t.csumOffset())));
            in.send(pf, 0, p.frame().length, meta.offload(h.set(p.flags(), p.gsoType(), p.hdrLen(), p.gsoSize(), p.csumStart(), p.csumOffset())));
        }
        assertThat(bare.framesSegmented()).isEqualTo(22_000);
        assertThat(whole.framesSegmented()).isZero();
        assertThat(whole.superFramesOut()).isEqualTo(22_000);
        assertThat(whole.framesOut()).isEqualTo(44_000);
        assertThat(bare.framesOut()).isEqualTo(22_000 * 8);
    }
}
