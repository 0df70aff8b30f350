package dev.jvbus.connector.vhostuser.hostile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.vhostuser.FrontEnd;
import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.FeatureNegotiationException;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Attacks through state (points 5, 6 and 7): a guest fault while the operator saves, a faulted ring's
 * position asked for, the dirty log switched under running rings, and a state file that asks for more
 * than the operator allows.
 */
final class StateAttacks {
    /** How long the operator's pause and save may take when the guest faults at that moment: the worker's wait bound, and a busy machine's share. */
    static final Duration SAVE_BOUND = QueueWorker.WAIT_BOUND.plusSeconds(30);
    static final int LOG_SWITCHES = 1000;
    static final int FRAMES_BEFORE_FAULT = 300;

    private StateAttacks() {}

    static Attack venetFaultDuringSave() {
        return Attack.now("5", "a venet guest that breaks its tx ring as the operator pauses its device for a save: the save ends within its bound, the device goes NEEDS_RESET and its client is told", lan -> {
            Device d = lan.add("venet", "breaker", Map.of());
            try (VenetTenant t = new VenetTenant(lan, d, "breaker")) {
                Thread worker = t.txWorker();
                // The operator holds the device (as pause does) when the guest breaks its ring, so the worker finds
                // the fault while the pause is about to wait for it to park: today's deadlock, if there is one.
                Object outcome = Lan.bounded("the operator's pause and save during a guest fault", SAVE_BOUND, () -> {
                    synchronized (d) {
                        t.breakTxRing();
                        Lan.await("the tx worker found the fault", () -> !worker.isAlive() || worker.getState() == Thread.State.BLOCKED);
                        d.pause();
                        try {
                            return d.save();
                        } catch (DeviceException e) {
                            return e;                     // a ring broken mid-batch has no position to save: refused cleanly
                        }
                    }
                });
                assertThat(outcome).isInstanceOfAny(DeviceState.class, DeviceException.class);
                System.out.println("  the operator's save during the fault: " + (outcome instanceof DeviceException e ? "refused: " + e.getMessage() : "saved"));
                Lan.await("the device ends NEEDS_RESET", () -> d.status().has(DeviceStatus.NEEDS_RESET));
                assertThat(d.needsResetReason()).get().asString().contains("queue 1");
                Lan.await("its client is told", () -> t.events.stream().anyMatch(e -> e instanceof Message.NeedsReset));
            }
            lan.unplug(d, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack faultedRingStopped() {
        return Attack.now("5b", "a vhost-user guest breaks its tx ring, then stops it as a migrating QEMU does (GET_VRING_BASE): the base answered is the used index the guest has back, so the next back-end takes again only the buffer in flight", lan -> {
            Device v = lan.addNet("faulting");
            try (VhostTenant t = new VhostTenant(lan, v, "faulting")) {
                for (int i = 0; i < FRAMES_BEFORE_FAULT; i++) t.send(lan.sink.mac, 60, i);
                t.awaitTxBack("the frames came back");
                t.breakTxRing();
                Lan.await("the device ends NEEDS_RESET", () -> v.status().has(DeviceStatus.NEEDS_RESET));
                assertThat(t.fe.getVringBase(1)).as("the used index the guest has back, not the base its ring started from (0)").isEqualTo(FRAMES_BEFORE_FAULT);
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    static Attack logBaseSwitching() {
        return Attack.now("6", "SET_LOG_BASE switched 1,000 times while the rings run: every log gets its marks and GET_VRING_BASE answers what the ring used", lan -> {
            Device v = lan.addNet("migrating");
            Memfd[] logs = {Memfd.create("log-a", 4096), Memfd.create("log-b", 4096)};
            try (VhostTenant t = new VhostTenant(lan, v, "migrating")) {
                Spray traffic = Spray.start("tx under the log switches", i -> t.send(lan.sink.mac, 60 + (int) (i % 1400), i));
                long n;
                try {
                    Lan.await("traffic through the migrating device", () -> t.txCompleted >= 1000 || !traffic.running());
                    long features = VirtioFeatures.VERSION_1.mask() | 1L << Wire.F_PROTOCOL_FEATURES;
                    setLogBase(t.fe, logs[0]);
                    t.fe.sendU64NeedReply(Request.SET_FEATURES, features | 1L << Wire.F_LOG_ALL);
                    assertThat(t.fe.replyU64(Request.SET_FEATURES)).as("LOG_ALL on").isZero();
                    for (int i = 1; i <= LOG_SWITCHES; i++) setLogBase(t.fe, logs[i & 1]);
                } finally {
                    n = traffic.stop();
                }
                t.awaitTxBack("the tx ring all came back");
                long usedPage = VhostTenant.TX_USED / Wire.LOG_PAGE;
                for (Memfd log : logs)
                    assertThat(log.segment().get(ValueLayout.JAVA_BYTE, usedPage / 8) & (1 << (usedPage % 8))).as("the tx used ring's page marked in " + log).isNotZero();
                t.fe.sendU64NeedReply(Request.SET_FEATURES, VirtioFeatures.VERSION_1.mask() | 1L << Wire.F_PROTOCOL_FEATURES);
                assertThat(t.fe.replyU64(Request.SET_FEATURES)).as("LOG_ALL off").isZero();
                assertThat(t.fe.getVringBase(1)).as("tx ring's base after " + n + " frames").isEqualTo((int) (n & 0xffff));
                assertThat(v.status().has(DeviceStatus.NEEDS_RESET)).as(v.needsResetReason().orElse("")).isFalse();
                assertThat(t.backend.session().lastError()).isNull();
            } finally {
                for (Memfd log : logs) log.close();
            }
            lan.unplug(v, Lan.WAIT);
            return Attack.Underway.DONE;
        });
    }

    private static void setLogBase(FrontEnd fe, Memfd log) {
        fe.send(Request.SET_LOG_BASE, 0, Codec.payload(16).putLong(VhostTenant.LOG_BYTES).putLong(0).flip(), log.fd());
        assertThat(fe.replyU64(Request.SET_LOG_BASE)).as("SET_LOG_BASE").isZero();
    }

    static Attack widenedRestore() {
        return Attack.now("7", "a state file that widens the operator's feature limit, or carries status bits no device can have, is refused by name and nothing of it joins the network", lan -> {
            Device source = lan.addNet("saved");
            DeviceState saved = source.save();           // a real virtio-net state, of a device on the pair's network
            lan.unplug(source, Lan.WAIT);
            long v1 = VirtioFeatures.VERSION_1.mask(), eventIdx = VirtioFeatures.EVENT_IDX.mask();
            int live = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK;
            int ports = lan.sw.ports().size(), devices = lan.container.devices().size();
            int devid = 0x7000_0000 | (int) (System.nanoTime() & 0xffff);

            // The file's own limit is wide open and it imposes EVENT_IDX, which this bus's operator took away.
            DeviceState wide = viaFile(new DeviceState(saved.type(), devid, live, -1L, v1 | eventIdx, saved.config(), List.of(),
                    saved.params(), saved.model()));
            assertThatThrownBy(() -> lan.container.restoreDevice(wide, ~eventIdx))
                    .isInstanceOf(FeatureNegotiationException.class).hasMessageContaining("[VIRTIO_RING_F_EVENT_IDX]");

            DeviceState impossible = viaFile(new DeviceState(saved.type(), devid + 1, 0x100, -1L, 0, saved.config(), List.of(),
                    saved.params(), saved.model()));
            assertThatThrownBy(() -> lan.container.restoreDevice(impossible, -1L))
                    .isInstanceOf(DeviceException.class).hasMessageContaining("saved status 0x100 is not one a device can be in");

            assertThat(lan.container.contains(new DevId(devid)) || lan.container.contains(new DevId(devid + 1))).isFalse();
            assertThat(lan.container.devices()).hasSize(devices);
            assertThat(lan.sw.ports()).as("ports on the pair's network").hasSize(ports);
            return Attack.Underway.DONE;
        });
    }

    /** A state as the operator would get it: written to a file and read back. */
    private static DeviceState viaFile(DeviceState s) {
        return StateCodec.decode(StateCodec.encode(s), dev.jvbus.core.spi.DeviceModels.discover()::stateSchema);
    }
}
