package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FAILED;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.core.bus.DeviceStatus.NEEDS_RESET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import dev.jvbus.core.testing.EchoModel;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A saved state is a file from elsewhere: restoring it must not widen what this bus's operator limited,
 * and its status and queues must be ones a device can be in under the features it imposes.
 */
class RestoreValidationTest {
    private static final int LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
    private static final long V1 = VirtioFeatures.VERSION_1.mask();
    private static final long EVENT_IDX = VirtioFeatures.EVENT_IDX.mask();

    private final Container container = Bus.withDiscoveredModels().createContainer("dst");

    private static DeviceState state(int status, long limit, long negotiated, QueueState... queues) {
        return new DeviceState(EchoModel.TYPE, 7, status, limit, negotiated, new byte[8], List.of(queues), Map.of(), EchoModel.EchoState.ZERO);
    }

    private static QueueState splitQueue(boolean eventIdx) {
        return new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 3, 3, eventIdx, List.of());
    }

    @Test
    void aModelStateOfAnotherSchemaIsRefusedNamingBoth() {
        DeviceState foreign = new DeviceState(EchoModel.TYPE, 7, 0, -1L, 0, new byte[8], List.of(), Map.of(),
                dev.jvbus.core.state.NoModelState.INSTANCE);
        assertThatThrownBy(() -> container.restoreDevice(foreign)).isInstanceOf(DeviceException.class)
                .hasMessageContaining("restore failed: saved model state is none state version 1, test-echo reads test-echo state version 1");
        assertThat(container.devices()).isEmpty();
    }

    @Test
    void theModelsStateTravelsAsItsRecord() {
        DeviceState s = new DeviceState(EchoModel.TYPE, 7, 0, -1L, 0, new byte[8], List.of(), Map.of(), new EchoModel.EchoState(5));
        Device d = container.restoreDevice(s);
        assertThat(EchoModel.CREATED.getLast().calls).isEqualTo(5);
        assertThat(d.save().model()).isEqualTo(new EchoModel.EchoState(5));
    }

    // ---------------------------------------------------------------- a restore prepared ahead, completed at the pause

    @Test
    void aDeviceRestoredFromAStateSavedAheadTakesTheLaterPositionsAndModelStateWhenCompletedAndAStaleStateIsRefused() {
        QueueState placed = new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 0, 0, true, List.of());
        Device d = container.restoreDevice(state(LIVE, -1L, V1 | EVENT_IDX, placed));
        QueueState moved = new QueueState(0, RingKind.SPLIT, 256, true, 0x1000, 0x2000, 0x3000, 9, 7, true, List.of(5, 6));
        DeviceState later = new DeviceState(EchoModel.TYPE, 7, LIVE, -1L, V1 | EVENT_IDX, new byte[8], List.of(moved), Map.of(),
                new EchoModel.EchoState(4));

        // What a prepared device cannot take: the driver settled something else meanwhile. Nothing changes.
        DeviceState reset = new DeviceState(EchoModel.TYPE, 7, ACKNOWLEDGE | DRIVER, -1L, 0, new byte[8], List.of(), Map.of(),
                EchoModel.EchoState.ZERO);
        assertThatThrownBy(() -> d.completeRestore(reset)).isInstanceOf(DeviceException.class).hasMessageContaining("stale: the driver changed the status");
        DeviceState renegotiated = new DeviceState(EchoModel.TYPE, 7, LIVE, -1L, V1, new byte[8], List.of(), Map.of(), EchoModel.EchoState.ZERO);
        assertThatThrownBy(() -> d.completeRestore(renegotiated)).isInstanceOf(DeviceException.class)
                .hasMessageContaining("stale: the negotiated features changed");
        DeviceState otherDevice = new DeviceState(EchoModel.TYPE, 8, LIVE, -1L, V1 | EVENT_IDX, new byte[8], List.of(), Map.of(),
                EchoModel.EchoState.ZERO);
        assertThatThrownBy(() -> d.completeRestore(otherDevice)).isInstanceOf(DeviceException.class).hasMessageContaining("device 8");
        assertThat(d.save().queues()).as("unchanged by the refusals").containsExactly(placed);

        d.completeRestore(later);
        assertThat(d.save().queues()).as("the positions it resumes from").containsExactly(moved);
        assertThat(d.save().model()).isEqualTo(new EchoModel.EchoState(4));
        assertThat(d.isPaused()).as("still waits for its driver and a resume").isTrue();
    }

    // ---------------------------------------------------------------- the target's operator limit wins

    @Test
    void aFileWithAWiderLimitCannotImposeFeaturesTheTargetOperatorLimitedAway() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), ~EVENT_IDX, Map.of());
        DeviceState wide = state(LIVE, -1L, V1 | EVENT_IDX);
        assertThatThrownBy(() -> d.restore(wide)).isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("cannot impose saved features")
                .hasMessageContaining("features not offered: [VIRTIO_RING_F_EVENT_IDX]")
                .satisfies(e -> assertThat(((FeatureNegotiationException) e).outside()).isEqualTo(EVENT_IDX));
        assertThat(d.features().limit()).as("the target's limit stays").isEqualTo(~EVENT_IDX);
        assertThat(d.features().negotiated()).isZero();

        assertThatThrownBy(() -> container.restoreDevice(wide, ~EVENT_IDX)).isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("[VIRTIO_RING_F_EVENT_IDX]");
        assertThat(container.devices()).isEmpty();
        assertThat(EchoModel.CREATED.getLast().closes).as("what the refused restore made is let go (a net device's port leaves its switch)")
                .isEqualTo(1);
    }

    @Test
    void aRestoredDeviceKeepsTheTargetsLimitNotTheFiles() {
        Device d = container.restoreDevice(state(LIVE, -1L, V1), ~EVENT_IDX);
        assertThat(d.features().negotiated()).as("a subset of the target's offer is imposed").isEqualTo(V1);
        assertThat(d.features().limit()).isEqualTo(~EVENT_IDX);

        // after a reset the driver negotiates again, from the target's offer
        Attachment a = d.attach("guest", DeviceObserver.NONE);
        a.writeStatus(0);
        assertThat(a.offeredFeatures() & EVENT_IDX).isZero();
        assertThat(d.save().limit()).isEqualTo(~EVENT_IDX);
    }

    @Test
    void theOfferADriverWasReadingBeforeFeaturesOkCannotExceedTheTargetLimit() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), ~EVENT_IDX, Map.of());
        assertThatThrownBy(() -> d.restore(state(ACKNOWLEDGE | DRIVER, -1L, 0)))
                .isInstanceOf(FeatureNegotiationException.class)
                .hasMessageContaining("cannot restore the offer the driver was reading")
                .hasMessageContaining("[VIRTIO_RING_F_EVENT_IDX]");
        // the same driver step under a file limit inside the target's is fine
        assertThat(container.restoreDevice(state(ACKNOWLEDGE | DRIVER, ~EVENT_IDX, 0), ~EVENT_IDX).status().bits())
                .isEqualTo(ACKNOWLEDGE | DRIVER);
    }

    @Test
    void negotiatedFeaturesWithoutFeaturesOkAreRefused() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
        assertThatThrownBy(() -> d.restore(state(ACKNOWLEDGE | DRIVER, -1L, V1)))
                .isInstanceOf(DeviceException.class).hasMessageContaining("saved without FEATURES_OK");
    }

    // ---------------------------------------------------------------- queues agree with the features

    @Test
    void aSplitQueueSavedWithEventIdxIsRefusedWhenEventIdxWasNotNegotiated() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
        assertThatThrownBy(() -> d.restore(state(LIVE, -1L, V1, splitQueue(true))))
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("queue 0 was saved with event idx on, but VIRTIO_RING_F_EVENT_IDX is not negotiated");
        assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
        assertThat(d.features().negotiated()).as("nothing of the refused state stays").isZero();

        Device agreeing = container.restoreDevice(state(LIVE, -1L, V1 | EVENT_IDX, splitQueue(true)));
        assertThat(agreeing.save().queues()).containsExactly(splitQueue(true));
    }

    @Test
    void aSplitQueueSavedWithoutEventIdxIsRefusedWhenEventIdxWasNegotiated() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
        assertThatThrownBy(() -> d.restore(state(LIVE, -1L, V1 | EVENT_IDX, splitQueue(false))))
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("queue 0 was saved with event idx off, but VIRTIO_RING_F_EVENT_IDX is negotiated");
    }

    @Test
    void aSavedQueueSizeTheModelDoesNotAcceptIsRefusedNamingTheRule() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
        QueueState odd = new QueueState(0, RingKind.SPLIT, 100, true, 0x1000, 0x2000, 0x3000, 3, 3, false, List.of());
        assertThatThrownBy(() -> d.restore(state(LIVE, -1L, V1, odd)))
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("queue 0 (rx) saved size 100 is not a power of two in 1..256");
        assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
    }

    @Test
    void aQueueSavedBeforeFeaturesOkIsRefused() {
        Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
        assertThatThrownBy(() -> d.restore(state(ACKNOWLEDGE | DRIVER, -1L, 0, splitQueue(false))))
                .isInstanceOf(DeviceException.class).hasMessageContaining("has no FEATURES_OK");
    }

    // ---------------------------------------------------------------- status bits

    @Test
    void unknownOrOutOfOrderStatusBitsAreRefused() {
        for (int bad : new int[] {0x10, ACKNOWLEDGE | 0x20, 0x100, ACKNOWLEDGE | FEATURES_OK, DRIVER,
                ACKNOWLEDGE | DRIVER | DRIVER_OK, DRIVER_OK | NEEDS_RESET, FEATURES_OK | FAILED}) {
            Device d = Device.create(new DevId(7), "dst", new EchoModel(), -1L, Map.of());
            assertThatThrownBy(() -> d.restore(state(bad, -1L, 0)))
                    .as("status 0x%x", bad)
                    .isInstanceOf(DeviceException.class)
                    .hasMessageContaining("saved status 0x" + Integer.toHexString(bad) + " is not one a device can be in");
            assertThat(d.status()).isEqualTo(DeviceStatus.RESET);
        }
    }

    @Test
    void everyReachableStatusIsRestoredAndNeedsResetSaysWhereItCameFrom() {
        int devid = 100;
        for (int driverBits : new int[] {0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER, ACKNOWLEDGE | DRIVER | FEATURES_OK, LIVE}) {
            for (int extra : new int[] {0, NEEDS_RESET, FAILED, NEEDS_RESET | FAILED}) {
                DeviceState s = new DeviceState(EchoModel.TYPE, devid++, driverBits | extra, -1L, 0, new byte[8],
                        List.of(), Map.of(), EchoModel.EchoState.ZERO);
                Device d = container.restoreDevice(s);
                assertThat(d.status().bits()).isEqualTo(driverBits | extra);
                if ((extra & NEEDS_RESET) != 0) assertThat(d.needsResetReason()).contains("it was saved needing a reset");
            }
        }
    }
}
