package dev.jvbus.core.bus;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static dev.jvbus.core.bus.DeviceStatus.NEEDS_RESET;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.testing.EchoModel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class QueueSetupTest {
    private final Device device = Bus.withDiscoveredModels().createContainer("c").addDevice(EchoModel.TYPE);
    private final EchoModel.Function fn = EchoModel.CREATED.getLast();
    private final Attachment a = device.attach("drv", DeviceObserver.NONE);
    private final EventFd kick = EventFd.create();

    @AfterEach
    void close() {
        kick.close();
    }

    @Test
    void queuesAreCheckedAgainstTheModelsLayout() {
        assertThatThrownBy(() -> a.setQueue(new QueueConfig(2, 64, 0, 0, 0))).hasMessageContaining("no queue 2; test-echo has 2");
        assertThatThrownBy(() -> a.setQueue(new QueueConfig(0, 100, 0, 0, 0))).hasMessageContaining("size 100 must be a power of two in 1..256");
        assertThatThrownBy(() -> a.setQueue(new QueueConfig(0, 512, 0, 0, 0))).hasMessageContaining("in 1..256");
        assertThatThrownBy(() -> a.enableQueue(1, true)).hasMessageContaining("queue 1 is not set up");
    }

    @Test
    void aDeviceSizedSmallerThanItsModelRefusesALargerQueueAndShowsItsOwnLayout() {
        Container c = Bus.withDiscoveredModels().createContainer("sized");
        Device small = c.addDevice(EchoModel.TYPE, -1L, java.util.Map.of("queue-size", "64"));
        assertThat(small.queues().queue(0).maxSize()).isEqualTo(64);
        assertThat(small.queues().queue(1).maxSize()).isEqualTo(64);
        assertThat(small.model().queues().queue(0).maxSize()).as("the model's own layout is unchanged").isEqualTo(256);
        Attachment drv = small.attach("drv", DeviceObserver.NONE);
        assertThatThrownBy(() -> drv.setQueue(new QueueConfig(0, 128, 0, 0, 0))).hasMessageContaining("size 128 must be a power of two in 1..64");
        drv.setQueue(new QueueConfig(0, 64, 0x1000, 0x2000, 0x3000));

        long before = c.nextDevid();
        assertThatThrownBy(() -> c.addDevice(EchoModel.TYPE, -1L, java.util.Map.of("queue-size", "512")))
                .isInstanceOf(BusException.class).hasMessageContaining("parameter 'queue-size' must be a power of two in 1..256: 512");
        assertThatThrownBy(() -> c.addDevice(EchoModel.TYPE, -1L, java.util.Map.of("queue-size", "lots")))
                .isInstanceOf(BusException.class).hasMessageContaining("not 'lots'");
        assertThat(c.devices()).containsExactly(small);
        assertThat(c.nextDevid()).as("a refused device takes no devid").isEqualTo(before);
    }

    @Test
    void driverOkHandsTheModelEveryEnabledQueueWithItsDoorbells() {
        GuestMemory mem = GuestMemory.empty();
        a.setMemory(mem);
        a.setQueue(new QueueConfig(0, 256, 0x1000, 0x2000, 0x3000));
        a.setQueue(new QueueConfig(1, 64, 0x4000, 0x5000, 0x6000));
        a.enableQueue(1, false);
        a.setDoorbells(0, kick, Notifier.NONE);
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);

        assertThat(fn.lastStart.memory()).isSameAs(mem);
        assertThat(fn.lastStart.queues()).singleElement().satisfies(q -> {
            assertThat(q.spec().name()).isEqualTo("rx");
            assertThat(q.config().size()).isEqualTo(256);
            assertThat(q.kick()).isSameAs(kick);
            assertThat(q.resume()).isNull();
        });
        assertThatThrownBy(() -> a.setQueue(new QueueConfig(1, 64, 0, 0, 0))).hasMessageContaining("before DRIVER_OK, not after");
        assertThatThrownBy(() -> a.setMemory(GuestMemory.empty())).hasMessageContaining("while the data path runs");
    }

    @Test
    void aQueueWithoutDoorbellsCannotStart() {
        a.setQueue(new QueueConfig(0, 256, 0x1000, 0x2000, 0x3000));
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertThatThrownBy(() -> a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK))
                .hasMessageContaining("queue 0 (rx) is set up but has no doorbells");
        assertThat(device.status().has(NEEDS_RESET)).isTrue();
    }

    @Test
    void resetForgetsTheQueueSetup() {
        a.setQueue(new QueueConfig(0, 256, 0x1000, 0x2000, 0x3000));
        a.setDoorbells(0, kick, Notifier.NONE);
        a.reset();
        a.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertThat(fn.lastStart.queues()).isEmpty();
    }
}
