package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.await;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Venet devices on one switch, driven through real IOQ rings in memfds with eventfd doorbells. */
class VenetSwitchTest {
    static final int[] SIZES = {60, 61, 64, 128, 511, 1000, 1500, 1513, 1514};

    static VenetFunction fn(VenetGuest g) {
        return (VenetFunction) g.att.function();
    }

    @Test
    void broadcastFloodsUnicastFollowsLearnedMacsEveryFrameOnceAndIntact() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device dc = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db);
             VenetGuest cc = new VenetGuest(Options.flat()).bringUp(dc)) {
            long ma = a.mac(), mb = b.mac(), mc = cc.mac();
            assertThat(List.of(ma, mb, mc)).doesNotHaveDuplicates().allSatisfy(m -> assertThat(MacAddress.isGroup(m)).isFalse());

            List<byte[]> sent = new ArrayList<>();
            long seq = 0;
            long bytes = 0;
            for (int size : SIZES) {
                byte[] f = frame(MacAddress.BROADCAST, ma, size, seq++);
                sent.add(f);
                bytes += size;
                a.sendBlocking(f);
            }
            awaitTrue(() -> poll(b) >= SIZES.length && poll(cc) >= SIZES.length, "broadcast at B and C");
            // B and C each say something, so the switch learns where they are.
            b.sendBlocking(frame(MacAddress.BROADCAST, mb, 60, 1000));
            cc.sendBlocking(frame(MacAddress.BROADCAST, mc, 60, 2000));
            awaitTrue(() -> poll(a) >= 2, "B's and C's broadcasts at A");
            for (int size : SIZES) {
                byte[] f = frame(mb, ma, size, seq++);
                sent.add(f);
                bytes += size;
                a.sendBlocking(f);
            }
            awaitTrue(() -> poll(b) >= 2 * SIZES.length + 1, "unicast at B");
            awaitTrue(() -> fn(a).txFrames == 2L * SIZES.length, "A's worker done");
            poll(cc);

            List<byte[]> atB = b.received.stream().filter(f -> Frames.seq(f) < 1000).toList();
            assertThat(atB).hasSize(sent.size());
            for (int i = 0; i < sent.size(); i++) assertThat(atB.get(i)).as("frame %d intact", i).isEqualTo(sent.get(i));
            // C got the broadcasts and B's broadcast, never the unicast to B.
            assertThat(cc.received.stream().map(Frames::seq).toList())
                    .containsExactlyElementsOf(concat(range(0, SIZES.length), List.of(1000L)));
            Map<String, String> macs = Networks.of(c).require("lan").macTable();
            assertThat(macs).containsKeys(MacAddress.toString(ma), MacAddress.toString(mb), MacAddress.toString(mc));

            VenetFunction fa = fn(a), fb = fn(b), fc = fn(cc);
            assertThat(fa.txFrames).isEqualTo(2L * SIZES.length);
            assertThat(fa.txBytes).isEqualTo(bytes);
            assertThat(fb.rxFrames).isEqualTo(2L * SIZES.length + 1);
            assertThat(fb.rxBytes).isEqualTo(bytes + 60);
            assertThat(fc.rxFrames).isEqualTo(SIZES.length + 1);
            assertThat(fa.rxFrames).isEqualTo(2);
            assertThat(fb.port().stats().txFrames()).isEqualTo(fb.rxFrames);
            assertThat(fa.port().stats().rxFrames()).isEqualTo(fa.txFrames);
            for (VenetFunction f : List.of(fa, fb, fc)) {
                assertThat(f.port().stats().dropped()).isZero();
                assertThat(f.rxDropsNoBuffer + f.rxDropsTooBig + f.rxDropsPortDown + f.txDropsOversize + f.txDropsRunt).isZero();
            }
            await(() -> {                      // published after the frames went out
                a.reapTx();
                return a.txCompletionLengths.size() >= 2 * SIZES.length;
            }, "A's tx completions");
            List<Long> lengths = Arrays.stream(SIZES).mapToObj(s -> (long) s).toList();
            assertThat(a.txCompletionLengths).as("tx completes with the bytes sent").containsExactlyElementsOf(concat(lengths, lengths));
            System.out.printf("venet switch: A tx %d frames %d bytes; B rx %d; C rx %d; A tx-ring signals sent %d suppressed %d%n",
                    fa.txFrames, fa.txBytes, fb.rxFrames, fc.rxFrames, a.tx.signal().signalsSent, a.tx.signal().signalsSuppressed);
        }
    }

    @Test
    void framesToAnEmptyRxRingAreDroppedAndCountedExactly() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db)) {
            long ma = a.mac();
            int extra = 10;
            int total = VenetGuest.COUNT + extra;
            for (int i = 0; i < total; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 100, i));
            awaitTrue(() -> fn(a).txFrames == total, "A sent all");
            List<byte[]> got = new ArrayList<>();
            b.drainWithoutRepost(got);
            VenetFunction fb = fn(b);
            assertThat(got.stream().map(Frames::seq).toList()).containsExactlyElementsOf(range(0, VenetGuest.COUNT));
            assertThat(fb.rxFrames).isEqualTo(VenetGuest.COUNT);
            assertThat(fb.rxDropsNoBuffer).isEqualTo(extra);
            assertThat(fb.port().stats().dropped(DropReason.NO_RX_BUFFER)).isEqualTo(extra);
            assertThat(fb.port().stats().dropped()).isEqualTo(extra);

            b.repostAll();
            for (int i = 0; i < 5; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 100, 500 + i));
            awaitTrue(() -> poll(b) >= 5, "frames after repost");
            assertThat(b.received.stream().map(Frames::seq).toList()).containsExactly(500L, 501L, 502L, 503L, 504L);
            assertThat(fb.rxDropsNoBuffer).isEqualTo(extra);
        }
    }

    @Test
    void jumboFramesOnlyWithTheMtu() throws Exception {
        Container c = Frames.container();
        Map<String, String> jumbo = Map.of("network", "lan", "mtu", "9000");
        Device da = c.addDevice("venet", -1, jumbo);
        Device db = c.addDevice("venet", -1, jumbo);
        Device dc = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat().rxBuf(9014)).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat().rxBuf(9014)).bringUp(db);
             VenetGuest cc = new VenetGuest(Options.flat()).bringUp(dc)) {
            long ma = a.mac();
            int[] sizes = {60, 1514, 1515, 4000, 9000, 9014};
            for (int i = 0; i < sizes.length; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, sizes[i], i));
            a.sendBlocking(frame(MacAddress.BROADCAST, ma, 9015, 99));     // over A's own MTU: dropped at tx
            awaitTrue(() -> fn(a).txFrames + fn(a).txDropsOversize == sizes.length + 1, "A's worker done");
            awaitTrue(() -> poll(b) >= sizes.length, "jumbo frames at B");
            poll(cc);
            for (int i = 0; i < sizes.length; i++) assertThat(b.received.get(i)).isEqualTo(frame(MacAddress.BROADCAST, ma, sizes[i], i));
            assertThat(fn(a).txDropsOversize).isEqualTo(1);
            // The worker counts a frame before it publishes the frame's completion: wait for the completions themselves.
            await(() -> {
                a.reapTx();
                return a.txCompletionLengths.size() == sizes.length + 1;
            }, "A's tx completions");
            assertThat(a.txCompletionLengths.getLast()).as("a dropped frame completes with length 0").isZero();
            // C has the default MTU: the two frames within 1514 arrive, the other four are TOO_BIG.
            assertThat(cc.received.stream().map(Frames::seq).toList()).containsExactly(0L, 1L);
            assertThat(fn(cc).rxDropsTooBig).isEqualTo(4);
            assertThat(fn(cc).port().stats().dropped(DropReason.TOO_BIG)).isEqualTo(4);
        }
    }

    static int poll(VenetGuest g) {
        try {
            g.poll();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        return g.received.size();
    }

    static List<Long> range(long from, long to) {
        List<Long> l = new ArrayList<>();
        for (long i = from; i < to; i++) l.add(i);
        return l;
    }

    static List<Long> concat(List<Long> a, List<Long> b) {
        List<Long> l = new ArrayList<>(a);
        l.addAll(b);
        return l;
    }
}
