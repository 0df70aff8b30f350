package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetSwitchTest.range;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A stream from A to B, paused mid-way (B first, so A's frames meet a closed port), both saved,
 * the saved bytes restored into a new container on a new bus over the same guest memory and
 * doorbells, resumed. Every frame arrives once, in order, except the ones counted as dropped.
 */
class VenetSaveRestoreTest {
    static final int N = 3000;
    static final int WINDOW = 48;
    static final int WHILE_PAUSED = 20;

    @Test
    void pauseSaveRestoreOnANewBusAndContinue() throws Exception {
        Container c1 = Frames.container();
        Device da = c1.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c1.addDevice("venet", -1, Map.of("network", "lan"));
        int evq = VenetWire.CAP_EVQ_LINKSTATE | VenetWire.CAP_EVQ_TXC;
        try (VenetGuest a = new VenetGuest(Options.flat().withEvents(evq).withSg()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat().withEvents(evq)).bringUp(db)) {
            long ma = a.mac();
            long macB = b.mac();
            VenetFunction[] fa = {(VenetFunction) a.att.function()};
            VenetFunction[] fb = {(VenetFunction) b.att.function()};
            long oldDrops = 0;
            long oldPortDown = 0;
            long seq = 0;
            boolean moved = false;
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (seq < N) {
                if (System.nanoTime() > deadline) throw new AssertionError("stuck at " + seq);
                long accounted = b.received.size() + oldDrops + fb[0].port().stats().dropped();
                if (seq - accounted < WINDOW && a.send(frame(MacAddress.BROADCAST, ma, 60 + (int) (seq % 1455), seq))) seq++;
                b.poll();
                a.poll();
                if (seq == N / 3 && !moved) {
                    moved = true;
                    long before = seq;      // let what is in flight land first, so the closed port's drops are exactly ours
                    VenetGuest.await(() -> { b.poll(); return fa[0].txFrames == before
                            && b.received.size() + fb[0].port().stats().dropped() == before; }, "stream drained");
                    db.pause();
                    for (int i = 0; i < WHILE_PAUSED; i++) a.sendBlocking(frame(MacAddress.BROADCAST, ma, 100, seq++));
                    long sentSoFar = seq;
                    // A's TXC events need event buffers back to keep transmitting, so keep reaping A while waiting.
                    VenetGuest.await(() -> { a.poll(); return fa[0].txFrames == sentSoFar; }, "A sent into the paused B");
                    da.pause();
                    byte[] sa = StateCodec.encode(da.save());
                    byte[] sb = StateCodec.encode(db.save());
                    oldDrops = fb[0].port().stats().dropped();
                    oldPortDown = fb[0].port().stats().dropped(DropReason.PORT_DOWN);
                    c1.removeDevice(da.devid());
                    c1.removeDevice(db.devid());

                    Container c2 = Frames.container();
                    var models = dev.jvbus.core.spi.DeviceModels.discover();
                    DeviceState ra = StateCodec.decode(sa, models::stateSchema), rb = StateCodec.decode(sb, models::stateSchema);
                    assertThat(ra.queues()).hasSize(3);
                    Device na = c2.restoreDevice(ra);
                    Device nb = c2.restoreDevice(rb);
                    a.reattach(na);
                    b.reattach(nb);
                    fa[0] = (VenetFunction) a.att.function();
                    fb[0] = (VenetFunction) b.att.function();
                    assertThat(fa[0].mac()).as("MAC kept across containers").isEqualTo(ma);
                    assertThat(fb[0].mac()).isEqualTo(macB);
                    assertThat(fa[0].linkUp()).isTrue();
                    assertThat(VenetModel.SG.in(fa[0].grantedFeatures())).isTrue();
                }
            }
            long total = seq;
            VenetGuest.await(() -> { a.poll(); return fa[0].txFrames + fa[0].txDropsOversize == total - N / 3 - WHILE_PAUSED; }, "A sent the rest");
            long drops = oldDrops;
            VenetGuest.await(() -> { b.poll(); a.poll(); return b.received.size() + drops + fb[0].port().stats().dropped() == total; }, "B got the rest");
            VenetGuest.await(() -> { a.poll(); return a.txcCookies.size() == total; }, "every TXC");

            List<Long> got = b.received.stream().map(Frames::seq).toList();
            assertThat(got).doesNotHaveDuplicates().isSorted();
            long lost = total - got.size();
            long counted = oldDrops + fb[0].port().stats().dropped();
            assertThat(lost).as("lost frames are exactly the counted drops").isEqualTo(counted);
            assertThat(oldPortDown).isEqualTo(WHILE_PAUSED);
            for (byte[] f : b.received) assertThat(f).isEqualTo(frame(MacAddress.BROADCAST, ma, f.length, Frames.seq(f)));
            assertThat(a.txcCookies).as("one TXC per frame, across the restore").containsExactlyElementsOf(range(0, total));
            System.out.printf("venet save/restore: %d frames, %d received, %d dropped (%d PORT_DOWN while B was paused), "
                    + "B link events %s%n", total, got.size(), counted, oldPortDown, b.linkEvents);
        }
    }
}
