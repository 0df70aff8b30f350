package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static dev.jvbus.model.venet.VenetSwitchTest.fn;
import static dev.jvbus.model.venet.VenetSwitchTest.poll;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.Networks;
import java.util.ArrayList;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A guest that breaks its rings takes down its own device only. */
class VenetFaultTest {

    @Test
    void aMalformedTxRingPutsThatDeviceInNeedsResetAndTheOthersCarryOn() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device dc = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db);
             VenetGuest cc = new VenetGuest(Options.flat()).bringUp(dc)) {
            a.tx.offer(0, 0xDEAD_0000L, 100);      // outside A's guest memory
            a.tx.kick();
            awaitTrue(() -> da.status().has(DeviceStatus.NEEDS_RESET), "A NEEDS_RESET");
            assertThat(da.needsResetReason()).get().asString().contains("queue 1").contains("outside guest memory");
            awaitTrue(() -> { synchronized (a.needsReset) { return a.needsReset.size() == 1; } }, "A's driver told");
            // A keeps its switch port (counters survive resets), but its rx gate is closed: frames for it are dropped.
            assertThat(Networks.of(c).require("lan").ports()).hasSize(3);
            long aPortDown = fn(a).port().stats().dropped(DropReason.PORT_DOWN);

            for (int i = 0; i < 10; i++) b.sendBlocking(frame(MacAddress.BROADCAST, b.mac(), 200, i));
            awaitTrue(() -> poll(cc) == 10, "B to C after A broke");
            assertThat(fn(a).port().stats().dropped(DropReason.PORT_DOWN) - aPortDown).as("B's broadcasts at A's closed port").isEqualTo(10);
            assertThat(db.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
            assertThat(dc.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
        }
    }

    @Test
    void aMalformedRxRingFoundOnDeliveryPutsThatDeviceInNeedsResetAndTheOthersCarryOn() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device dc = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db);
             VenetGuest cc = new VenetGuest(Options.flat()).bringUp(dc)) {
            b.call(VenetWire.FUNC_FLUSHRX, new byte[0]);
            b.drainWithoutRepost(new ArrayList<>());
            b.rx.offer(0, 0xDEAD_0000L, 1514);
            b.rx.kick();
            a.sendBlocking(frame(MacAddress.BROADCAST, a.mac(), 100, 1));
            awaitTrue(() -> db.status().has(DeviceStatus.NEEDS_RESET), "B NEEDS_RESET");
            assertThat(db.needsResetReason()).get().asString().contains("queue 0");
            awaitTrue(() -> poll(cc) == 1, "C got the frame B could not take");
            a.sendBlocking(frame(MacAddress.BROADCAST, a.mac(), 100, 2));
            awaitTrue(() -> poll(cc) == 2, "A to C after B broke");
            assertThat(da.status().has(DeviceStatus.NEEDS_RESET)).isFalse();
            // A's worker counts a frame after the switch delivered it: C can hold it before A counts it.
            awaitTrue(() -> fn(a).txFrames == 2, "A counted both frames it sent");
        }
    }
}
