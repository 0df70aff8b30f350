package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.protocol.BusCall;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * RESUME_DRIVER takes the features a driver had as a restore takes a saved driver's: inside the offer, or what the
 * model still honours (a one-pair virtio-net device's VIRTIO_NET_F_MQ, which every device offered until MQ went with
 * {@code queue-pairs} > 1). A guest that negotiated it under the old offer, and was restored here, carries on after
 * a bus restart too; a new driver is still not offered it, and an operator limit without it still refuses it.
 */
class DriverResumeFeaturesTest {
    static final long OLD_ONE_PAIR = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.CTRL_VQ.mask() | VirtioNetFeatures.MQ.mask();

    @RegisterExtension
    final ShmFixture fx = new ShmFixture();

    @Test
    void aOnePairDriverThatNegotiatedMqUnderTheOldOfferResumesAndAnythingElseOutsideTheOfferIsStillRefused() throws Exception {
        Container c = fx.bus.createContainer("resume");
        Device onePair = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "1"));
        Device limited = c.addDevice(VirtioNetModel.TYPE, ~VirtioNetFeatures.MQ.mask(), Map.of("queue-pairs", "1"));
        Device other = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("queue-pairs", "1"));
        fx.shm.expose("resume");
        try (RawClient client = RawClient.greeted(fx.socket("resume"))) {
            for (Device d : new Device[] {onePair, limited, other}) assertThat(client.request(new Message.DevOpen(d.devid())).isOk()).isTrue();
            assertThat(VirtioNetFeatures.MQ.in(u64(call(client, onePair.devid(), BusCall.GET_FEATURES, new byte[0]))))
                    .as("not offered to a new driver").isFalse();

            Reply r = client.request(new Message.DevCall(onePair.devid(), BusCall.RESUME_DRIVER.func, BusCall.u64(OLD_ONE_PAIR)));
            assertThat(r.isOk()).as(r.toString()).isTrue();
            assertThat(u64(call(client, onePair.devid(), BusCall.GET_NEGOTIATED, new byte[0]))).isEqualTo(OLD_ONE_PAIR);
            assertThat(onePair.status().bits()).isEqualTo(DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK);

            Reply refused = client.request(new Message.DevCall(limited.devid(), BusCall.RESUME_DRIVER.func, BusCall.u64(OLD_ONE_PAIR)));
            assertThat(refused.error()).as(refused.toString()).isEqualTo(ErrorCode.DEVICE_ERROR);
            assertThat(refused.errorMessage()).contains("does not offer [" + VirtioNetFeatures.MQ.name() + "]");
            assertThat(limited.status().bits()).as("left at reset").isZero();

            long mqWithoutCtrl = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.MQ.mask();
            Reply unmet = client.request(new Message.DevCall(other.devid(), BusCall.RESUME_DRIVER.func, BusCall.u64(mqWithoutCtrl)));
            assertThat(unmet.error()).as(unmet.toString()).isEqualTo(ErrorCode.DEVICE_ERROR);
            assertThat(unmet.errorMessage()).contains(VirtioNetFeatures.MQ.name()).contains(VirtioNetFeatures.CTRL_VQ.name());
            assertThat(other.status().bits()).as("left at reset").isZero();
        }
    }

    private static byte[] call(RawClient client, DevId devid, BusCall call, byte[] payload) throws Exception {
        Reply r = client.request(new Message.DevCall(devid, call.func, payload));
        assertThat(r.isOk()).as(r.toString()).isTrue();
        return r.payload();
    }

    private static long u64(byte[] b) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
}
