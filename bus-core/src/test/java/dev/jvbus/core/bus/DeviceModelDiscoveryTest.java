package dev.jvbus.core.bus;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.DeviceModels;
import dev.jvbus.core.testing.EchoModel;
import org.junit.jupiter.api.Test;

class DeviceModelDiscoveryTest {

    @Test
    void aModelOnTheClassPathAppearsOnTheBus() {
        // EchoModel is named only in src/test/resources/META-INF/services: no code registers it.
        Bus bus = Bus.withDiscoveredModels();
        assertThat(bus.models().types()).contains(EchoModel.TYPE);
        DeviceModel m = bus.models().model(EchoModel.TYPE).orElseThrow();
        assertThat(m.queues().count()).isEqualTo(2);
        assertThat(m.queues().queue(0).name()).isEqualTo("rx");
        assertThat(m.queues().queue(1).maxSize()).isEqualTo(256);
        assertThat(m.config().size()).isEqualTo(8);
        assertThat(m.features().names(m.features().mask()))
                .containsExactly("ECHO_F_UPPERCASE", "ECHO_F_COUNTER", "VIRTIO_F_INDIRECT_DESC", "VIRTIO_RING_F_EVENT_IDX", "VIRTIO_F_VERSION_1");

        Device d = bus.createContainer("c").addDevice(EchoModel.TYPE);
        assertThat(d.type()).isEqualTo(EchoModel.TYPE);
        assertThat(d.configSnapshot()).startsWith(0x40, 0xEC, 0, 0); // the model initialised its config space
    }

    @Test
    void aClassLoaderWithoutTheServiceFileSeesNoModel() {
        ClassLoader empty = new ClassLoader(null) { };
        assertThat(DeviceModels.discover(empty).types()).doesNotContain(EchoModel.TYPE);
    }

    @Test
    void twoModelsWithOneNameArePackagingErrors() {
        assertThatThrownBy(() -> DeviceModels.of(new EchoModel(), new EchoModel()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("two device models named 'test-echo'");
    }
}
