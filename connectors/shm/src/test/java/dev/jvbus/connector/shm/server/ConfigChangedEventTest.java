package dev.jvbus.connector.shm.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.shm.client.BusClient;
import dev.jvbus.connector.shm.client.BusEventListener;
import dev.jvbus.connector.shm.client.ClientDevice;
import dev.jvbus.connector.shm.client.DriverMemory;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Protocol version 3's CONFIG_CHANGED: a device that changes its config space on its own tells its shm
 * driver, as virtio's configuration change interrupt does. The case that needs it: a virtio-net device
 * restored elsewhere (a move between two containers of one bus, over two real sockets) asks its driver to
 * announce itself (VIRTIO_NET_S_ANNOUNCE); the driver hears it instead of polling the config.
 */
class ConfigChangedEventTest {
    /** VIRTIO_NET_S_ANNOUNCE in the config's status field. */
    static final int S_ANNOUNCE = 2;

    @RegisterExtension
    final ShmFixture fx = new ShmFixture();

    @Test
    void aRestoredVirtioNetDeviceTellsItsShmDriverItsConfigChangedAndTheConfigThenAsksForAnAnnounce() throws Exception {
        Container a = fx.bus.createContainer("node-a"), b = fx.bus.createContainer("node-b");
        Device source = a.addDevice(VirtioNetModel.TYPE);
        fx.shm.expose("node-a");
        fx.shm.expose("node-b");
        BlockingQueue<Message.Event> eventsThere = new LinkedBlockingQueue<>();
        try (BusClient here = BusClient.connect(fx.socket("node-a"), "driver");
             BusClient there = BusClient.connect(fx.socket("node-b"), "driver", new BusEventListener() {
                 @Override public void onEvent(Message.Event e) { eventsThere.add(e); }
             });
             ClientDevice dev = here.open(source.devid());
             DriverMemory mem = dev.shareMemory("announce", 1 << 20, 0)) {
            assertThat(there.version()).as("both sides speak version 3").isEqualTo(3);
            long want = VirtioFeatures.VERSION_1.mask() | VirtioNetFeatures.STATUS.mask() | VirtioNetFeatures.CTRL_VQ.mask()
                    | VirtioNetFeatures.GUEST_ANNOUNCE.mask();
            assertThat(dev.negotiate(want)).isEqualTo(want);
            dev.setUpQueues(mem, 256, 256, 64);   // rx, tx, control
            dev.driverOk();
            assertThat(dev.readConfig(VirtioNetModel.CONFIG_STATUS, 1)[0] & S_ANNOUNCE).as("no announce asked on a fresh start").isZero();

            // The move: saved here, restored on B, the driver follows with its memory and doorbells.
            source.pause();
            DeviceState saved = source.save();
            Device target = b.restoreDevice(saved);
            ClientDevice moved = dev.reopenOn(there, target.devid());
            long seen = moved.configChanges();
            target.resume();   // its rings carry on from their saved positions: a restore, so it asks for an announce

            assertThat(moved.awaitConfigChange(seen, Duration.ofSeconds(30))).as("CONFIG_CHANGED reached the driver").isGreaterThan(seen);
            Message.Event e;
            do e = eventsThere.poll(30, TimeUnit.SECONDS);   // B's DEVADD for the restored device comes first
            while (e instanceof Message.DevAdd);
            assertThat(e).as("and its listener").isEqualTo(new Message.ConfigChanged(target.devid()));
            assertThat(moved.readConfig(VirtioNetModel.CONFIG_STATUS, 1)[0] & S_ANNOUNCE)
                    .as("the config the driver then reads asks it to announce itself").isEqualTo(S_ANNOUNCE);
            assertThat(dev.configChanges()).as("the handle left behind heard nothing").isZero();
            dev.handOver();   // the device lives on B now: the queues are the new handle's, which closes them
            moved.close();
        }
    }
}
