package dev.jvbus.model.virtionet;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.ring.virtio.SplitRingResume;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.state.DeviceState;
import dev.jvbus.core.state.StateCodec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What a driver's control record brings back after a bus restart, driven as a surviving driver drives it: the bus's
 * device is dropped without a word to the driver (its rings, its memory and its record stay), a fresh device with the
 * same devid is made in a container of the same name, and the driver takes it up where its rings are (RESUME_DRIVER,
 * RESUME_QUEUE per ring from its used index, the model verb again, DRIVER_OK), as shm's {@code DriverResume} does.
 */
class ControlRecordResumeTest {
    static final int OK = VirtioNetControlQueueTest.OK, ERR = VirtioNetControlQueueTest.ERR;
    /** The control record's guest address: past the control queue's command buffers. */
    static final long RECORD = GuestNet.G + GuestNet.CTRL_BUFFERS + 0x8000;
    /** The delivery log's guest address, after the record. */
    static final long LOG = RECORD + 0x1000;
    final List<GuestNet> guests = new ArrayList<>();

    @AfterEach
    void close() {
        for (GuestNet g : guests) g.close();
    }

    /** A driver that gives its device a control record before DRIVER_OK. */
    GuestNet guestWithRecord(Container c) throws Exception {
        GuestNet g = new GuestNet(c.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(g);
        g.negotiate(-1L);
        g.a.call(VirtioNetModel.CALL_CONTROL_RECORD, le64(RECORD));
        g.start().postRx(256);
        return g;
    }

    static byte[] le64(long v) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
    }

    /**
     * A migration's restore (the device asks its driver to announce itself), then the bus dies before the driver
     * acknowledged: the restarted bus asks again, from the record. Once acknowledged, a second restart asks nothing.
     */
    @Test
    void anAnnounceRequestPendingWhenTheBusDiesIsAskedAgainAfterTheRestartAndNotOnceAcknowledged() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet g = guestWithRecord(c1);
        // The control ring carries on from a position after the restart (a driver that set nothing starts over).
        assertThat(g.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, VirtioNetControlQueueTest.on(false))).isEqualTo(OK);

        Container c2 = Bus.withDiscoveredModels().createContainer(c1.name());
        moveTo(g, c1, c2, true);   // a driver may give it again; whether it must is the next test's
        assertThat(VirtioNetControlQueueTest.status(g) & NetControl.STATUS_ANNOUNCE).as("asked after the move").isNotZero();
        assertThat(g.configChanges.get()).isEqualTo(1);

        restart(g, c2);
        assertThat(VirtioNetControlQueueTest.status(g) & NetControl.STATUS_ANNOUNCE).as("asked again after the restart").isNotZero();
        assertThat(VirtioNetControlQueueTest.device(g).announcePending()).isTrue();
        assertThat(g.configChanges.get()).as("a configuration change notification from the restarted bus").isEqualTo(2);
        assertThat(VirtioNetControlQueueTest.port(containerOf(g), g).rxFilter().promiscuous()).as("the settings came back too").isFalse();
        assertThat(g.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).isEqualTo(OK);
        assertThat(VirtioNetControlQueueTest.device(g).announcePending()).isFalse();

        restart(g, containerOf(g));
        assertThat(VirtioNetControlQueueTest.status(g) & NetControl.STATUS_ANNOUNCE).as("acknowledged before this restart").isZero();
        assertThat(g.configChanges.get()).isEqualTo(2);
        assertThat(g.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).as("nothing pending").isEqualTo(ERR);
    }

    /**
     * A driver that follows a move sets nothing up again (shm's MOVED: no status, feature, queue or model call): the
     * moved device goes on writing its record and its delivery log where they are. A bus restart after the move then
     * reads what was set after it, not the record as it was before the move.
     */
    @Test
    void aRestartAfterAMoveReadsWhatWasSetAfterTheMoveAndTheMovedDeviceGoesOnLogging() throws Exception {
        Container c1 = VirtioNetExchangeTest.newContainer();
        GuestNet g = new GuestNet(c1.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(g);
        g.negotiate(-1L);
        g.a.call(VirtioNetModel.CALL_CONTROL_RECORD, le64(RECORD));
        g.a.call(VirtioNetModel.CALL_DELIVERY_LOG, le64(LOG));
        g.start().postRx(256);
        assertThat(g.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, VirtioNetControlQueueTest.on(false))).isEqualTo(OK);

        Container c2 = Bus.withDiscoveredModels().createContainer(c1.name());
        moveTo(g, c1, c2, false);
        assertThat(g.command(NetControl.CLASS_RX, NetControl.RX_PROMISC, VirtioNetControlQueueTest.on(true))).isEqualTo(OK);
        assertThat(g.command(NetControl.CLASS_ANNOUNCE, NetControl.ANNOUNCE_ACK, new byte[0])).isEqualTo(OK);
        GuestNet peer = new GuestNet(c2.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256);
        guests.add(peer);
        peer.negotiate(-1L).start().postRx(256);
        peer.send(Frames.frame(g.mac(), peer.mac(), 60, 1), GuestNet.TxLayout.ONE);
        assertThat(g.receive(1, VirtioNetControlQueueTest.WAIT)).hasSize(1);
        assertThat(loggedSenders(g)).as("the moved device logs its deliveries where its driver keeps the log").contains(peer.mac());

        restart(g, c2);
        assertThat(VirtioNetControlQueueTest.port(containerOf(g), g).rxFilter().promiscuous())
                .as("promiscuous mode as the driver set it after the move").isTrue();
        assertThat(VirtioNetControlQueueTest.status(g) & NetControl.STATUS_ANNOUNCE).as("acknowledged after the move").isZero();
    }

    /** The source MACs the delivery log at {@link #LOG} has a slot for. */
    static List<Long> loggedSenders(GuestNet g) {
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < DeliveryLog.SLOTS; i++) {
            long key = g.mem.segment().get(java.lang.foreign.ValueLayout.JAVA_LONG, LOG - GuestNet.G + (long) i * DeliveryLog.SLOT_BYTES);
            if (key != 0) out.add(key & 0xffff_ffff_ffffL);
        }
        return out;
    }

    private final Map<Device, Container> containers = new java.util.IdentityHashMap<>();

    private Container containerOf(GuestNet g) {
        return containers.get(g.device);
    }

    /** Pause, save, remove, restore in {@code to}; the same driver carries on there, and gives its record again if {@code again}. */
    void moveTo(GuestNet g, Container from, Container to, boolean again) throws Exception {
        g.device.pause();
        byte[] saved = StateCodec.encode(g.device.save());
        from.removeDevice(g.device.devid());
        DeviceState state = StateCodec.decode(saved, Bus.withDiscoveredModels().models()::stateSchema);
        Device restored = to.restoreDevice(state);
        containers.put(restored, to);
        g.reattach(restored);
        if (again) g.a.call(VirtioNetModel.CALL_CONTROL_RECORD, le64(RECORD));
        restored.resume();
        assertThat(restored.status().isLive()).isTrue();
    }

    /**
     * The bus that holds {@code g}'s device in {@code dying} dies: the device is gone (removed, as a dead bus's would be:
     * nothing is written into the driver's memory), and the restarted bus makes a fresh one with the same devid in a
     * container of the same name, which the driver takes up where its rings are.
     */
    void restart(GuestNet g, Container dying) throws Exception {
        dying.removeDevice(g.device.devid());
        Container restarted = Bus.withDiscoveredModels().createContainer(dying.name());
        Device fresh = restarted.addDevice(g.device.devid(), VirtioNetModel.TYPE, -1L, Map.of());
        containers.put(fresh, restarted);
        g.device = fresh;
        g.a = fresh.attach("guest", g.observer);
        g.a.writeStatus(ACKNOWLEDGE | DRIVER);
        g.a.ackFeatures(g.features);
        g.a.addStatus(FEATURES_OK);
        assertThat(g.a.negotiatedFeatures()).isEqualTo(g.features);
        g.a.setMemory(g.memory);
        resumeQueue(g, new QueueConfig(0, g.queueSize, GuestNet.G + GuestNet.RX_RING, GuestNet.G + GuestNet.RX_RING + 0x8000,
                GuestNet.G + GuestNet.RX_RING + 0x1_0000));
        resumeQueue(g, new QueueConfig(1, g.queueSize, GuestNet.G + GuestNet.TX_RING, GuestNet.G + GuestNet.TX_RING + 0x8000,
                GuestNet.G + GuestNet.TX_RING + 0x1_0000));
        resumeQueue(g, new QueueConfig(g.ctrlIndex, GuestNet.CTRL_SIZE, GuestNet.G + GuestNet.CTRL_RING, GuestNet.G + GuestNet.CTRL_RING + 0x400,
                GuestNet.G + GuestNet.CTRL_RING + 0x1000));
        g.a.call(VirtioNetModel.CALL_CONTROL_RECORD, le64(RECORD));
        g.a.setDoorbells(0, g.rxKick, Notifier.of(g.rxCall));
        g.a.setDoorbells(1, g.txKick, Notifier.of(g.txCall));
        g.a.setDoorbells(g.ctrlIndex, g.ctrlKick, Notifier.of(g.ctrlCall));
        g.a.addStatus(DRIVER_OK);
        assertThat(g.a.status().isLive()).isTrue();
    }

    private static void resumeQueue(GuestNet g, QueueConfig q) throws Exception {
        g.a.setQueue(q, SplitRingResume.fromUsed(q.index(), q.size(), q.descAddr(), q.availAddr(), q.usedAddr(), g.memory,
                VirtioFeatures.EVENT_IDX.in(g.features)));
    }
}
