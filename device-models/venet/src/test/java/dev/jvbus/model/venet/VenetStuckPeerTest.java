package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.Frames.frame;
import static dev.jvbus.model.venet.VenetGuest.awaitTrue;
import static dev.jvbus.model.venet.VenetSwitchTest.fn;
import static dev.jvbus.model.venet.VenetSwitchTest.poll;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.testing.StuckDoorbell;
import dev.jvbus.model.venet.VenetGuest.Options;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.RxGate;
import dev.jvbus.net.SwitchPort;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Peers that stop: a guest whose ring breaks while the operator pauses its device, a fault that lands
 * after its driver reset, a receiver stuck in its doorbell. None of them may stick the bus. A stuck test
 * fails on its timeout instead of hanging the build.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class VenetStuckPeerTest {

    static Thread thread(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no thread " + name));
    }

    static Thread txWorker(VenetGuest g) {
        return thread(fn(g).name() + "-tx");
    }

    /** Runs {@code body} on a platform thread of its own, so the test can wait for it with a deadline. */
    static <T> CompletableFuture<T> onThread(String name, java.util.concurrent.Callable<T> body) {
        CompletableFuture<T> done = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name(name).start(() -> {
            try {
                done.complete(body.call());
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        return done;
    }

    @Test
    void aGuestFaultWhileTheOperatorPausesForASaveEndsThePauseWithinItsBoundAndTheDeviceNeedsReset() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da)) {
            Thread worker = txWorker(a);
            // The operator's pause takes the device; the guest breaks its tx ring at that moment, so the
            // worker finds the fault while the pause is about to wait for it to park.
            CompletableFuture<Object> saved = onThread("operator", () -> {
                synchronized (da) {
                    a.tx.offer(0, 0xDEAD_0000L, 100);    // outside the guest's memory
                    a.tx.kick();
                    awaitTrue(() -> !worker.isAlive() || worker.getState() == Thread.State.BLOCKED, "the worker found the fault");
                    da.pause();
                    try {
                        return da.save();
                    } catch (DeviceException e) {
                        return e;                        // a ring broken mid-batch has no position to save: refused cleanly
                    }
                }
            });
            Object outcome = saved.get(QueueWorker.WAIT_BOUND.toSeconds() + 30, TimeUnit.SECONDS);
            assertThat(outcome).isInstanceOfAny(DeviceState.class, DeviceException.class);
            awaitTrue(() -> da.status().has(DeviceStatus.NEEDS_RESET), "the device ends NEEDS_RESET");
            assertThat(da.needsResetReason()).get().asString().contains("queue 1").contains("outside guest memory");
            awaitTrue(() -> { synchronized (a.needsReset) { return a.needsReset.size() == 1; } }, "the driver told");
        }
    }

    @Test
    void aFaultOfTheDriversPreviousSessionLandingAfterItsResetDoesNotMarkTheNextSession() throws Exception {
        Container c = Frames.container();
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest b = new VenetGuest(Options.flat()).bringUp(db)) {
            Thread oldWorker = txWorker(a);
            // A control call holds the device (as the driver's reset will) when the worker finds the fault;
            // the driver resets and starts a new session before the report can land.
            synchronized (da) {
                a.tx.offer(0, 0xDEAD_0000L, 100);
                a.tx.kick();
                awaitTrue(() -> !oldWorker.isAlive(), "the faulting worker handed its report off and ended");
                a.restart();
            }
            awaitTrue(() -> da.lateFaultsIgnored() == 1, "the first session's fault landed and was ignored");
            assertThat(da.status().has(DeviceStatus.NEEDS_RESET)).as("the new session is not marked").isFalse();
            assertThat(da.status().isLive()).isTrue();
            synchronized (a.needsReset) { assertThat(a.needsReset).isEmpty(); }

            a.sendBlocking(frame(MacAddress.BROADCAST, a.mac(), 100, 1));
            awaitTrue(() -> poll(b) == 1, "the new session's frame at B");
        }
    }

    @Test
    void aReceiverStuckInItsDoorbellCostsItsSendersCountedDropsAndUnplugAndDestroyFinishWithinTheirBounds() throws Exception {
        Bus bus = new Bus(DeviceModels.discover(getClass().getClassLoader()));
        Container c = bus.createContainer("t-" + UUID.randomUUID());
        Device da = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device dc = c.addDevice("venet", -1, Map.of("network", "lan"));
        Device dd = c.addDevice("venet", -1, Map.of("network", "lan"));
        try (StuckDoorbell stuck = new StuckDoorbell();
             VenetGuest a = new VenetGuest(Options.flat()).bringUp(da);
             VenetGuest cc = new VenetGuest(Options.flat()).bringUp(dc);
             VenetGuest d = new VenetGuest(Options.flat()).bringUp(dd);
             VenetGuest b = new VenetGuest(Options.flat()).withRxCall(stuck)) {
            long mc = cc.mac();
            cc.sendBlocking(frame(MacAddress.BROADCAST, mc, 60, 0));          // the switch learns C
            awaitTrue(() -> poll(a) == 1 && poll(d) == 1, "C's broadcast");

            // B's peer never reads its rx doorbell: the first frame B receives leaves its sender stuck in it.
            Device db = c.addDevice("venet", -1, Map.of("network", "lan"));
            b.bringUp(db);
            b.rx.signal().enable();                                          // B's driver asks for rx interrupts
            long mb = b.mac();
            b.sendBlocking(frame(MacAddress.BROADCAST, mb, 60, 0));          // the switch learns B
            awaitTrue(() -> poll(cc) == 1, "B's broadcast");
            SwitchPort portB = fn(b).port();
            VenetFunction fa = fn(a), fB = fn(b);
            Thread workerA = txWorker(a);
            a.reapTx();

            a.sendBlocking(frame(mb, a.mac(), 100, 1));
            assertThat(stuck.awaitStuck(Duration.ofSeconds(20))).as("A's tx worker is stuck in B's doorbell").isTrue();

            // D sends to B and to C: the frames for B are dropped and counted, C gets all of its own.
            for (int i = 0; i < 5; i++) {
                d.sendBlocking(frame(mb, d.mac(), 100, 10 + i));
                d.sendBlocking(frame(mc, d.mac(), 100, 20 + i));
            }
            awaitTrue(() -> poll(cc) == 6, "D's frames at C, past the stuck B");
            awaitTrue(() -> portB.stats().dropped(DropReason.PORT_STALLED) == 5, "D's frames for B dropped as PORT_STALLED");
            assertThat(da.status().has(DeviceStatus.NEEDS_RESET) || dd.status().has(DeviceStatus.NEEDS_RESET)).isFalse();

            // The operator unplugs B: it finishes within its bounds though a delivery is stuck inside B.
            assertThat(onThread("unplug", () -> c.removeDevice(db.devid())))
                    .succeedsWithin(RxGate.DEFAULT_BOUND.multipliedBy(2).plus(Duration.ofSeconds(30)));
            assertThat(fB.stats().rxStuckCloses()).as("B's reset gave up on the stuck delivery").isPositive();

            // Destroying the container resets A, whose worker is still stuck in B's doorbell: left behind, counted.
            assertThat(onThread("destroy", () -> { bus.destroyContainer(c.name()); return null; }))
                    .succeedsWithin(QueueWorker.WAIT_BOUND.plus(Duration.ofSeconds(30)));
            assertThat(fa.stats().workersLeftBehind()).isEqualTo(1);
            assertThat(workerA.isAlive()).isTrue();

            // B's peer reads at last: A's worker comes back, finds its run over and leaves A's tx ring alone.
            stuck.release();
            awaitTrue(() -> !workerA.isAlive(), "A's left-behind worker exits");
            assertThat(a.reapTx()).as("no completion written into A's ring after its run ended").isZero();
        }
    }
}
